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

  /** A table as read: {@code name} ("--train t.csv") says where it came from in errors. */
  record Table(String name, StructType schema, List<Row> rows) {}

  private PredictTables() {}

  /** Each path names an existing Parquet or CSV file or folder: checked before Spark starts. */
  static void checkPaths(String trainPath, String testPath) {
    checkPath(trainPath, "--train");
    checkPath(testPath, "--test");
  }

  private static void checkPath(String path, String flag) {
    String lower = path.toLowerCase(Locale.ROOT);
    if (!lower.endsWith(".csv") && !lower.endsWith(".parquet")) {
      throw new UserError(flag + " " + path + ": expected a .parquet or .csv path");
    }
    if (!path.contains("://") && !Files.exists(Path.of(path))) {
      throw new UserError(flag + " " + path + ": no such file");
    }
  }

  /**
   * Reads both tables into the driver and checks them ({@link #fromTables}); the train table is
   * checked before the test table is read.
   */
  static Input load(SparkSession spark, String trainPath, String testPath, String label) {
    checkPaths(trainPath, testPath);
    Table train = read(spark, trainPath, "--train");
    trainFeatures(train, label);
    return fromTables(train, read(spark, testPath, "--test"), label);
  }

  /** A Parquet path (a file or Spark's folder of parts), or a CSV file with a header. */
  static Table read(SparkSession spark, String path, String flag) {
    checkPath(path, flag);
    Dataset<Row> df = path.toLowerCase(Locale.ROOT).endsWith(".csv")
        ? spark.read().option("header", "true").option("inferSchema", "true").csv(path)
        : spark.read().parquet(path);
    return new Table(flag + " " + path, df.schema(), df.collectAsList());
  }

  /** The model's input from two tables in memory, after checking every column and value. */
  static Input fromTables(Table train, Table test, String label) {
    List<String> features = trainFeatures(train, label);
    if (test.rows().isEmpty()) {
      throw new UserError(test.name() + " has no rows: expected at least one row to predict");
    }
    List<String> testFeatures = featureColumns(test, label);
    if (!testFeatures.equals(features)) {
      throw new UserError(test.name() + " has feature columns " + testFeatures + ", "
          + train.name() + " has " + features + ": expected the same names in the same order"
          + " (the test table may leave out the label '" + label + "')");
    }
    for (String reserved : List.of(PREDICTION, PROBABILITIES)) {
      if (Arrays.asList(test.schema().fieldNames()).contains(reserved)) {
        throw new UserError(test.name() + " already has a column '" + reserved
            + "', which the output adds: rename it");
      }
    }
    int nTrain = train.rows().size();
    int nTest = test.rows().size();
    int f = features.size();
    float[] x = new float[(nTrain + nTest) * f];
    fill(x, 0, train, features);
    fill(x, nTrain * f, test, features);
    float[] y = labels(train, label);
    return new Input(Tensor.of(x, nTrain + nTest, f), y, test.rows(), test.schema());
  }

  /** The train table's feature columns, after checking its rows, label and feature types. */
  private static List<String> trainFeatures(Table train, String label) {
    if (train.rows().isEmpty()) {
      throw new UserError(train.name() + " has no rows: expected at least one train row");
    }
    List<String> columns = Arrays.asList(train.schema().fieldNames());
    if (!columns.contains(label)) {
      throw new UserError("--label " + label + ": " + train.name() + " has no such column; its"
          + " columns are " + columns);
    }
    StructField labelField = train.schema().apply(label);
    if (!(labelField.dataType() instanceof NumericType)) {
      throw new UserError("--label " + label + " in " + train.name() + " is "
          + labelField.dataType().simpleString() + ": expected numeric class ids (0, 1, 2, ...)");
    }
    List<String> features = featureColumns(train, label);
    if (features.isEmpty()) {
      throw new UserError(train.name() + " has no feature columns besides the label '" + label
          + "'");
    }
    return features;
  }

  /** Every column but the label, in table order; each must be numeric. */
  private static List<String> featureColumns(Table table, String label) {
    List<String> names = new ArrayList<>();
    for (StructField field : table.schema().fields()) {
      if (field.name().equals(label)) {
        continue;
      }
      if (!(field.dataType() instanceof NumericType)) {
        throw new UserError(table.name() + ": column '" + field.name() + "' is "
            + field.dataType().simpleString() + ": expected a numeric feature (every column but"
            + " the label '" + label + "' is a feature)");
      }
      names.add(field.name());
    }
    return names;
  }

  /** Copies the values of {@code columns} of every row into {@code x} from {@code offset}. */
  private static void fill(float[] x, int offset, Table table, List<String> columns) {
    int at = offset;
    for (int r = 0; r < table.rows().size(); r++) {
      Row row = table.rows().get(r);
      for (String column : columns) {
        Object v = row.get(table.schema().fieldIndex(column));
        float value = v == null ? Float.NaN : ((Number) v).floatValue();
        if (!Float.isFinite(value)) {
          throw new UserError(table.name() + " row " + (r + 1) + ", column '" + column + "': "
              + (v == null ? "null" : v) + "; expected a finite number that fits float32");
        }
        x[at++] = value;
      }
    }
  }

  /** The train labels; each must be a class id (a non-negative integer). */
  private static float[] labels(Table train, String label) {
    int column = train.schema().fieldIndex(label);
    float[] y = new float[train.rows().size()];
    for (int r = 0; r < y.length; r++) {
      Object v = train.rows().get(r).get(column);
      double d = v == null ? Double.NaN : ((Number) v).doubleValue();
      if (!(d >= 0 && d == Math.rint(d) && d < (1 << 24))) {
        throw new UserError(train.name() + " row " + (r + 1) + ": label '" + label + "' is " + v
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
