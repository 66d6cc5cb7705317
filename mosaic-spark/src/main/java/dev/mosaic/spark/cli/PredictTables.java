package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The table form of {@code predict}: a train and a test table (Parquet or CSV) become the model's
 * {@code x} (train rows first) and {@code yTrain}, after checking every column and value; the
 * predictions become the test rows plus {@code prediction} and {@code probabilities}. Every
 * problem is a {@link UserError} that names the flag, the file, and the column or row (rows
 * counted from 1, in the order Spark reads them).
 */
final class PredictTables {
  static final String PREDICTION = "prediction";
  static final String PROBABILITIES = "probabilities";

  /** What the model needs from the two tables, and the test rows to copy into the output. */
  record Input(Tensor x, float[] yTrain, List<Row> testRows, StructType testSchema) {}

  private PredictTables() {}

  /** Reads both tables and checks them against each other; {@code label} names the class column. */
  static Input load(SparkSession spark, String trainPath, String testPath, String label) {
    String trainName = "--train " + trainPath;
    String testName = "--test " + testPath;
    Dataset<Row> train = read(spark, trainPath, "--train");
    Dataset<Row> test = read(spark, testPath, "--test");
    List<Row> trainRows = train.collectAsList();
    if (trainRows.isEmpty()) {
      throw new UserError(trainName + " has no rows: expected at least one train row");
    }
    StructType trainSchema = train.schema();
    List<String> trainColumns = Arrays.asList(trainSchema.fieldNames());
    if (!trainColumns.contains(label)) {
      throw new UserError("--label " + label + ": " + trainName + " has no such column; its columns"
          + " are " + trainColumns);
    }
    StructField labelField = trainSchema.apply(label);
    if (!(labelField.dataType() instanceof NumericType)) {
      throw new UserError("--label " + label + " in " + trainName + " is "
          + labelField.dataType().simpleString() + ": expected numeric class ids (0, 1, 2, ...)");
    }
    List<String> features = featureColumns(trainSchema, label, trainName);
    if (features.isEmpty()) {
      throw new UserError(trainName + " has no feature columns besides the label '" + label + "'");
    }
    List<Row> testRows = test.collectAsList();
    if (testRows.isEmpty()) {
      throw new UserError(testName + " has no rows: expected at least one row to predict");
    }
    StructType testSchema = test.schema();
    List<String> testFeatures = featureColumns(testSchema, label, testName);
    if (!testFeatures.equals(features)) {
      throw new UserError(testName + " has feature columns " + testFeatures + ", " + trainName
          + " has " + features + ": expected the same names in the same order (the test table"
          + " may leave out the label '" + label + "')");
    }
    for (String reserved : List.of(PREDICTION, PROBABILITIES)) {
      if (Arrays.asList(testSchema.fieldNames()).contains(reserved)) {
        throw new UserError(testName + " already has a column '" + reserved
            + "', which the output adds: rename it");
      }
    }
    int nTrain = trainRows.size();
    int f = features.size();
    float[] x = new float[(nTrain + testRows.size()) * f];
    fill(x, 0, trainRows, indices(trainSchema, features), trainName);
    fill(x, nTrain * f, testRows, indices(testSchema, features), testName);
    float[] y = labels(trainRows, trainSchema.fieldIndex(label), label, trainName);
    return new Input(Tensor.of(x, nTrain + testRows.size(), f), y, testRows, testSchema);
  }

  /** A Parquet path (a file or Spark's folder of parts), or a CSV file with a header. */
  static Dataset<Row> read(SparkSession spark, String path, String flag) {
    String lower = path.toLowerCase(Locale.ROOT);
    boolean csv = lower.endsWith(".csv");
    if (!csv && !lower.endsWith(".parquet")) {
      throw new UserError(flag + " " + path + ": expected a .parquet or .csv path");
    }
    if (!path.contains("://") && !Files.exists(Path.of(path))) {
      throw new UserError(flag + " " + path + ": no such file");
    }
    return csv
        ? spark.read().option("header", "true").option("inferSchema", "true").csv(path)
        : spark.read().parquet(path);
  }

  /** Every column but the label, in table order; each must be numeric. */
  private static List<String> featureColumns(StructType schema, String label, String table) {
    List<String> names = new ArrayList<>();
    for (StructField field : schema.fields()) {
      if (field.name().equals(label)) {
        continue;
      }
      if (!(field.dataType() instanceof NumericType)) {
        throw new UserError(table + ": column '" + field.name() + "' is "
            + field.dataType().simpleString() + ": expected a numeric feature (every column but"
            + " the label '" + label + "' is a feature)");
      }
      names.add(field.name());
    }
    return names;
  }

  private static int[] indices(StructType schema, List<String> columns) {
    return columns.stream().mapToInt(schema::fieldIndex).toArray();
  }

  /** Copies the feature values of {@code rows} into {@code x} from {@code offset}; finite only. */
  private static void fill(float[] x, int offset, List<Row> rows, int[] columns, String table) {
    int at = offset;
    for (int r = 0; r < rows.size(); r++) {
      Row row = rows.get(r);
      for (int c : columns) {
        Object v = row.get(c);
        float value = v == null ? Float.NaN : ((Number) v).floatValue();
        if (!Float.isFinite(value)) {
          throw new UserError(table + " row " + (r + 1) + ", column '"
              + row.schema().fields()[c].name() + "': " + (v == null ? "null" : v)
              + "; expected a finite number that fits float32");
        }
        x[at++] = value;
      }
    }
  }

  /** The train labels; each must be a class id (a non-negative integer). */
  private static float[] labels(List<Row> rows, int column, String label, String table) {
    float[] y = new float[rows.size()];
    for (int r = 0; r < rows.size(); r++) {
      Object v = rows.get(r).get(column);
      double d = v == null ? Double.NaN : ((Number) v).doubleValue();
      if (!(d >= 0 && d == Math.rint(d) && d < (1 << 24))) {
        throw new UserError(table + " row " + (r + 1) + ": label '" + label + "' is " + v
            + "; expected a class id (an integer 0, 1, 2, ...)");
      }
      y[r] = (float) d;
    }
    return y;
  }

  /**
   * The test rows with two more columns: {@code prediction} (the most probable class) and
   * {@code probabilities} (one per class).
   */
  static Dataset<Row> output(SparkSession spark, Input in, Tensor probabilities) {
    StructType schema = in.testSchema()
        .add(PREDICTION, DataTypes.IntegerType, false)
        .add(PROBABILITIES, DataTypes.createArrayType(DataTypes.FloatType, false), false);
    int classes = probabilities.dim(1);
    float[] p = probabilities.data();
    List<Row> rows = new ArrayList<>(in.testRows().size());
    for (int r = 0; r < in.testRows().size(); r++) {
      Row test = in.testRows().get(r);
      Object[] values = new Object[test.length() + 2];
      for (int c = 0; c < test.length(); c++) {
        values[c] = test.get(c);
      }
      List<Float> probs = new ArrayList<>(classes);
      int best = 0;
      for (int k = 0; k < classes; k++) {
        probs.add(p[r * classes + k]);
        if (p[r * classes + k] > p[r * classes + best]) {
          best = k;
        }
      }
      values[test.length()] = best;
      values[test.length() + 1] = probs;
      rows.add(RowFactory.create(values));
    }
    return spark.createDataFrame(rows, schema);
  }
}
