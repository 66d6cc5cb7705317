package dev.mosaic.ml;

import java.io.Serializable;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.Params;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Reads a row's features from the columns the user named, bound to one schema's column
 * positions: either one column of {@code array<float>} or {@code array<double>} (elements may be
 * declared nullable, as Parquet and {@code array(...)} make them; an actual null is refused) or
 * an ML {@code Vector} (dense or sparse, as {@code VectorAssembler} makes it) — or several
 * numeric scalar columns, one feature each, in the order listed.
 */
final class FeatureColumn implements Serializable {
  private static final long serialVersionUID = 1L;
  static final String EXPECTED = "array<float>, array<double> or an ML Vector";
  static final String SCALARS_EXPECTED = "numeric scalar columns, one feature each, in order;"
      + " when set, used instead of featuresCol";

  private enum Kind { ARRAY, VECTOR, SCALARS }

  private final Kind kind;
  private final String[] names;
  private final int[] positions;

  private FeatureColumn(Kind kind, String[] names, int[] positions) {
    this.kind = kind;
    this.names = names;
    this.positions = positions;
  }

  /**
   * The features that {@code stage}'s params name, checked against {@code schema}: the scalar
   * columns of {@code featureCols} when it lists any (then {@code featuresCol} must not be set
   * as well), else the one {@code featuresCol}.
   */
  static FeatureColumn of(StructType schema, Params stage, Param<String> featuresCol,
      StringArrayParam featureCols) {
    String[] scalars = stage.getOrDefault(featureCols);
    if (scalars.length == 0) {
      return of(schema, stage.getOrDefault(featuresCol));
    }
    if (stage.isSet(featuresCol)) {
      throw new IllegalArgumentException("set featuresCol or featureCols, not both: got"
          + " featuresCol '" + stage.getOrDefault(featuresCol) + "' and featureCols "
          + Arrays.toString(scalars));
    }
    return scalars(schema, scalars);
  }

  /** One array or Vector column. */
  static FeatureColumn of(StructType schema, String name) {
    DataType t = field(schema, name).dataType();
    int[] at = {schema.fieldIndex(name)};
    if (t instanceof ArrayType a && (a.elementType() == DataTypes.FloatType
        || a.elementType() == DataTypes.DoubleType)) {
      return new FeatureColumn(Kind.ARRAY, new String[] {name}, at);
    }
    if (t.sameType(SQLDataTypes.VectorType())) {
      return new FeatureColumn(Kind.VECTOR, new String[] {name}, at);
    }
    throw new IllegalArgumentException("column '" + name + "' must be " + EXPECTED + ", got "
        + t.simpleString());
  }

  /** Numeric scalar columns, one feature each. */
  static FeatureColumn scalars(StructType schema, String... names) {
    if (names.length == 0) {
      throw new IllegalArgumentException("featureCols is empty: expected at least one column");
    }
    Set<String> seen = new HashSet<>();
    int[] at = new int[names.length];
    for (int i = 0; i < names.length; i++) {
      if (!seen.add(names[i])) {
        throw new IllegalArgumentException("featureCols lists column '" + names[i] + "' twice:"
            + " expected each column once");
      }
      DataType t = field(schema, names[i]).dataType();
      if (!(t instanceof NumericType)) {
        throw new IllegalArgumentException("column '" + names[i] + "' in featureCols must be a"
            + " numeric type, got " + t.simpleString());
      }
      at[i] = schema.fieldIndex(names[i]);
    }
    return new FeatureColumn(Kind.SCALARS, names.clone(), at);
  }

  /** The field, or a one-line error listing the columns there are. */
  static StructField field(StructType schema, String name) {
    return Arrays.stream(schema.fields()).filter(f -> f.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("column '" + name + "' is missing; the"
            + " input has " + Arrays.toString(schema.fieldNames())));
  }

  /** The input columns read, in order. */
  String[] columns() {
    return names.clone();
  }

  /** The features' source for messages: {@code column 'f'} or {@code columns [a, b]}. */
  String describe() {
    return kind == Kind.SCALARS ? "columns " + Arrays.toString(names)
        : "column '" + names[0] + "'";
  }

  /** Features per row when the schema fixes it (scalar columns), else -1 (read per row). */
  int fixedCount() {
    return kind == Kind.SCALARS ? names.length : -1;
  }

  /** This reader for a schema whose columns are {@link #columns()} in another order. */
  FeatureColumn bind(StructType schema) {
    int[] at = new int[names.length];
    for (int i = 0; i < names.length; i++) {
      at[i] = schema.fieldIndex(names[i]);
    }
    return new FeatureColumn(kind, names, at);
  }

  /**
   * The features of {@code row} (laid out as the schema this reader was bound to), or a
   * one-line error naming {@code rowName}, the column and what is wrong.
   */
  float[] read(Row row, String rowName) {
    return kind == Kind.SCALARS ? readScalars(row, rowName) : readOne(row, rowName);
  }

  private float[] readScalars(Row row, String rowName) {
    float[] out = new float[names.length];
    for (int i = 0; i < out.length; i++) {
      if (row.isNullAt(positions[i])) {
        throw new IllegalArgumentException("column '" + names[i] + "' is null in " + rowName
            + ": expected a number");
      }
      out[i] = ((Number) row.get(positions[i])).floatValue();
    }
    return out;
  }

  private float[] readOne(Row row, String rowName) {
    int index = positions[0];
    String name = names[0];
    if (row.isNullAt(index)) {
      throw new IllegalArgumentException("column '" + name + "' is null in " + rowName
          + ": expected " + EXPECTED);
    }
    if (kind == Kind.VECTOR) {
      double[] v = ((Vector) row.get(index)).toArray();
      float[] out = new float[v.length];
      for (int i = 0; i < v.length; i++) {
        out[i] = (float) v[i];
      }
      return out;
    }
    List<Object> values = row.getList(index);
    float[] out = new float[values.size()];
    for (int i = 0; i < out.length; i++) {
      Object v = values.get(i);
      if (v == null) {
        throw new IllegalArgumentException("column '" + name + "' has a null at element " + i
            + " in " + rowName + ": expected numbers");
      }
      out[i] = ((Number) v).floatValue();
    }
    return out;
  }
}
