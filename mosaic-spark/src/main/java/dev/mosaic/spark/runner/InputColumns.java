package dev.mosaic.spark.runner;

import java.util.Arrays;
import java.util.Objects;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The key, position and embedding columns of a {@link DataFrameAttention} input, found by name
 * and checked for their types; and the output schema they give.
 */
record InputColumns(StructField key, StructField pos, StructField emb, boolean longPos,
    boolean nested) {

  static InputColumns of(StructType schema, String keyCol, String posCol, String embCol,
      String outCol, boolean caseSensitive) {
    StructField key = field(schema, keyCol, "key", caseSensitive);
    StructField pos = field(schema, posCol, "position", caseSensitive);
    StructField emb = field(schema, embCol, "embedding", caseSensitive);
    checkKeyType(key);
    boolean longPos = positionIsLong(pos);
    boolean nested = embeddingIsNested(emb);
    checkNames(key.name(), pos.name(), Objects.requireNonNull(outCol, "outCol"));
    return new InputColumns(key, pos, emb, longPos, nested);
  }

  /** {@code (key, pos, outCol)}: input names and types, the embedding's nesting; no nulls. */
  StructType outputSchema(String outCol) {
    DataType vector = DataTypes.createArrayType(DataTypes.FloatType, false);
    return new StructType()
        .add(key.name(), key.dataType(), false)
        .add(pos.name(), pos.dataType(), false)
        .add(outCol, nested ? DataTypes.createArrayType(vector, false) : vector, false);
  }

  /** Attention runs along axis 0 of each sequence's tensor (or the same axis from the end). */
  void checkAxis(int axis) {
    int rank = nested ? 3 : 2;
    int a = axis < 0 ? axis + rank : axis;
    if (a != 0) {
      throw new IllegalArgumentException("spec.axis must be the position axis 0 (or " + (-rank)
          + ") of each sequence's (positions" + (nested ? ", features" : "") + ", embed) tensor,"
          + " got " + axis);
    }
  }

  /** A column name quoted for {@code col()}: dots and backticks are part of the name. */
  static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }

  private static StructField field(StructType schema, String name, String role,
      boolean caseSensitive) {
    Objects.requireNonNull(name, role + " column name");
    StructField found = null;
    for (StructField f : schema.fields()) {
      if (f.name().equals(name)) {
        return f;
      }
    }
    int matches = 0;
    if (!caseSensitive) {
      for (StructField f : schema.fields()) {
        if (f.name().equalsIgnoreCase(name)) {
          found = f;
          matches++;
        }
      }
    }
    if (matches != 1) {
      throw new IllegalArgumentException(role + " column '" + name + "' "
          + (matches > 1 ? "is ambiguous" : "is not there") + "; the DataFrame has columns "
          + Arrays.toString(schema.fieldNames()));
    }
    return found;
  }

  private static void checkKeyType(StructField f) {
    DataType t = f.dataType();
    boolean ok = t instanceof NumericType || t instanceof StringType || t instanceof BinaryType
        || t instanceof BooleanType || t instanceof DateType
        || t instanceof org.apache.spark.sql.types.TimestampType
        || t instanceof org.apache.spark.sql.types.TimestampNTZType;
    if (!ok) {
      throw new IllegalArgumentException("key column '" + f.name() + "' has type "
          + t.simpleString() + ", expected an orderable atomic type (number, string, binary,"
          + " boolean, date, timestamp)");
    }
  }

  private static boolean positionIsLong(StructField f) {
    if (f.dataType() instanceof LongType) {
      return true;
    }
    if (f.dataType() instanceof IntegerType) {
      return false;
    }
    throw new IllegalArgumentException("position column '" + f.name() + "' has type "
        + f.dataType().simpleString() + ", expected int or bigint");
  }

  private static boolean embeddingIsNested(StructField f) {
    if (f.dataType() instanceof ArrayType a) {
      if (a.elementType() instanceof FloatType) {
        return false;
      }
      if (a.elementType() instanceof ArrayType b && b.elementType() instanceof FloatType) {
        return true;
      }
    }
    throw new IllegalArgumentException("embedding column '" + f.name() + "' has type "
        + f.dataType().simpleString() + ", expected array<float> (a sequence of vectors) or"
        + " array<array<float>> (rows of (features, embed))");
  }

  private static void checkNames(String key, String pos, String out) {
    if (key.equalsIgnoreCase(pos)) {
      throw new IllegalArgumentException(
          "key column '" + key + "' and position column '" + pos + "' must differ");
    }
    if (out.equalsIgnoreCase(key) || out.equalsIgnoreCase(pos)) {
      throw new IllegalArgumentException("output column '" + out + "' must differ from the key"
          + " column '" + key + "' and the position column '" + pos + "'");
    }
  }
}
