package dev.mosaic.ml;

import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Reads a row's features from the column the user named: {@code array<float>} or
 * {@code array<double>} (elements may be declared nullable, as Parquet and {@code array(...)}
 * make them; an actual null is refused) or an ML {@code Vector} (dense or sparse, as
 * {@code VectorAssembler} makes it).
 */
final class FeatureColumn implements Serializable {
  private static final long serialVersionUID = 1L;
  static final String EXPECTED = "array<float>, array<double> or an ML Vector";
  private final String name;
  private final boolean vector;

  private FeatureColumn(String name, boolean vector) {
    this.name = name;
    this.vector = vector;
  }

  /** Checks the column's type in {@code schema}. */
  static FeatureColumn of(StructType schema, String name) {
    DataType t = field(schema, name).dataType();
    if (t instanceof ArrayType a && (a.elementType() == DataTypes.FloatType
        || a.elementType() == DataTypes.DoubleType)) {
      return new FeatureColumn(name, false);
    }
    if (t.sameType(SQLDataTypes.VectorType())) {
      return new FeatureColumn(name, true);
    }
    throw new IllegalArgumentException("column '" + name + "' must be " + EXPECTED + ", got "
        + t.simpleString());
  }

  /** The field, or a one-line error listing the columns there are. */
  static StructField field(StructType schema, String name) {
    return Arrays.stream(schema.fields()).filter(f -> f.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("column '" + name + "' is missing; the"
            + " input has " + Arrays.toString(schema.fieldNames())));
  }

  String name() {
    return name;
  }

  /**
   * The features of {@code row} (the column at {@code index}), or a one-line error naming
   * {@code rowName} and what is wrong.
   */
  float[] read(Row row, int index, String rowName) {
    if (row.isNullAt(index)) {
      throw new IllegalArgumentException("column '" + name + "' is null in " + rowName
          + ": expected " + EXPECTED);
    }
    if (vector) {
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
