package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static dev.mosaic.spark.cli.PredictCli.assertClose;
import static dev.mosaic.spark.cli.PredictCli.assertUsageError;
import static dev.mosaic.spark.cli.PredictCli.data;
import static dev.mosaic.spark.cli.PredictCli.model;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.runner.TestSpark;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mosaic predict}, table form through Spark: a fixture's table as Parquet and as CSV,
 * predictions equal to PyTorch's; what CSV reading makes of bad files is one line with exit code
 * 2. Every test starts from the shared session, which predict uses and leaves running, so the
 * class starts Spark once.
 */
class PredictTablesSparkTest {
  @TempDir
  Path dir;

  private String[] tableArgs(Path train, Path test, String label, String... more) {
    List<String> a = new ArrayList<>(List.of("predict", "--model", model("small").toString(),
        "--train", train.toString(), "--test", test.toString(), "--label", label, "--output",
        dir.resolve("pred.parquet").toString(), "--threads", "2"));
    a.addAll(List.of(more));
    return a.toArray(new String[0]);
  }

  @Test
  void parquetTablesGivePyTorchsPredictions() {
    Map<String, Tensor> fixture = data("deep");
    Tensor x = fixture.get("x");
    float[] y = fixture.get("y").data();
    int features = x.dim(1);
    SparkSession spark = TestSpark.get(); // predict uses it and leaves it running
    StructType schema = new StructType();
    for (int c = 0; c < features; c++) {
      schema = schema.add("f" + c, DataTypes.FloatType, false);
    }
    StructType testSchema = schema;
    schema = schema.add("class", DataTypes.IntegerType, false);
    List<Row> train = new ArrayList<>();
    List<Row> test = new ArrayList<>();
    for (int r = 0; r < x.dim(0); r++) {
      Object[] v = new Object[r < y.length ? features + 1 : features];
      for (int c = 0; c < features; c++) {
        v[c] = x.get(r, c);
      }
      if (r < y.length) {
        v[features] = (int) y[r];
        train.add(RowFactory.create(v));
      } else {
        test.add(RowFactory.create(v));
      }
    }
    Path trainFile = dir.resolve("train.parquet");
    Path testFile = dir.resolve("test.parquet");
    spark.createDataFrame(train, schema).write().parquet(trainFile.toString());
    spark.createDataFrame(test, testSchema).repartition(3).write().parquet(testFile.toString());

    CliRun.Result r = run("predict", "--model", model("deep").toString(), "--train",
        trainFile.toString(), "--test", testFile.toString(), "--label", "class", "--output",
        dir.resolve("pred.parquet").toString(), "--threads", "2", "--backend", "local");
    assertEquals(0, r.code(), r.err());
    List<String> expectedColumns = new ArrayList<>(Arrays.asList(testSchema.fieldNames()));
    expectedColumns.addAll(List.of("prediction", "probabilities"));
    assertPredictions(x, y.length, fixture.get("probabilities"), expectedColumns, features, 0);
  }

  @Test
  void csvTablesGivePyTorchsPredictions() {
    Map<String, Tensor> fixture = data("small");
    Tensor x = fixture.get("x");
    float[] y = fixture.get("y").data();
    int features = x.dim(1);
    // The label first, and in the test table too (its values are ignored).
    StringBuilder header = new StringBuilder("label");
    for (int c = 0; c < features; c++) {
      header.append(",col ").append(c);
    }
    List<String> train = new ArrayList<>(List.of(header.toString()));
    List<String> test = new ArrayList<>(List.of(header.toString()));
    for (int r = 0; r < x.dim(0); r++) {
      StringBuilder line = new StringBuilder(r < y.length ? Integer.toString((int) y[r]) : "0");
      for (int c = 0; c < features; c++) {
        line.append(',').append((double) x.get(r, c)); // exact: the float's own value
      }
      (r < y.length ? train : test).add(line.toString());
    }
    SparkSession before = TestSpark.get();
    CliRun.Result r = run(tableArgs(csv("train.csv", train), csv("test.csv", test), "label"));
    assertEquals(0, r.code(), r.err());
    assertFalse(before.sparkContext().isStopped(), "a session that was running is left running");
    List<String> expectedColumns = new ArrayList<>(Arrays.asList(header.toString().split(",")));
    expectedColumns.addAll(List.of("prediction", "probabilities"));
    assertPredictions(x, y.length, fixture.get("probabilities"), expectedColumns, features, 1);
  }

  /**
   * pred.parquet holds one row per test row, in any order (matched by feature values), with
   * PyTorch's probabilities and their argmax as the prediction.
   */
  private void assertPredictions(Tensor x, int nTrain, Tensor expected, List<String> columns,
      int features, int firstFeature) {
    List<Row> rows = TestSpark.get().read().parquet(dir.resolve("pred.parquet").toString())
        .collectAsList();
    int tests = x.dim(0) - nTrain;
    assertEquals(tests, rows.size());
    assertEquals(columns, Arrays.asList(rows.get(0).schema().fieldNames()));
    Map<String, Integer> byFeatures = new HashMap<>();
    for (int r = 0; r < tests; r++) {
      float[] key = new float[features];
      for (int c = 0; c < features; c++) {
        key[c] = x.get(nTrain + r, c);
      }
      byFeatures.put(Arrays.toString(key), r);
    }
    int classes = expected.dim(1);
    float[] probs = new float[tests * classes];
    for (Row row : rows) {
      float[] key = new float[features];
      for (int c = 0; c < features; c++) {
        key[c] = ((Number) row.get(firstFeature + c)).floatValue();
      }
      Integer r = byFeatures.remove(Arrays.toString(key));
      assertNotNull(r, "an output row with unknown features " + Arrays.toString(key));
      List<Float> p = row.getList(row.fieldIndex("probabilities"));
      assertEquals(classes, p.size());
      int best = 0;
      for (int k = 0; k < classes; k++) {
        probs[r * classes + k] = p.get(k);
        best = p.get(k) > p.get(best) ? k : best;
      }
      assertEquals(best, row.getInt(row.fieldIndex("prediction")));
      int expectedBest = 0;
      for (int k = 1; k < classes; k++) {
        expectedBest = expected.get(r, k) > expected.get(r, expectedBest) ? k : expectedBest;
      }
      assertEquals(expectedBest, best, "prediction of test row " + r);
    }
    assertClose(expected, probs, "probabilities");
  }

  private Path csv(String name, List<String> lines) {
    Path p = dir.resolve(name);
    try {
      Files.write(p, lines);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return p;
  }

  /** {@code --backend ring}: the row attention over 3 barrier tasks, still PyTorch's logits. */
  @Test
  void tensorFormOnARingOfThreeGivesPyTorchsLogits() {
    TestSpark.get(); // predict runs its barrier stage on the running session
    Map<String, Tensor> fixture = data("deep");
    Path out = dir.resolve("ring.safetensors");
    CliRun.Result r = run("predict", "--model", model("deep").toString(), "--data",
        PredictCli.fixture("deep.data.safetensors").toString(), "--output", out.toString(),
        "--backend", "ring", "--sp", "3", "--threads", "1");
    assertEquals(0, r.code(), r.err());
    Map<String, Tensor> got = dev.mosaic.kernels.io.Safetensors.read(out);
    assertClose(fixture.get("logits"), got.get("logits").data(), "logits");
    assertClose(fixture.get("probabilities"), got.get("probabilities").data(), "probabilities");
  }

  /** What CSV reading does to bad input (header only, empty fields, text) reaches the user. */
  @Test
  void badCsvFilesReachTheUserAsOneLine() {
    TestSpark.get(); // predict uses a running session and leaves it running: one start-up here
    Path good = csv("good.csv", List.of("a,b,label", "1.5,2,0", "2.5,3,1", "0.5,1,1"));
    Path goodTest = csv("goodtest.csv", List.of("a,b", "1,2"));
    assertUsageError(tableArgs(csv("str.csv", List.of("a,city,label", "1,x,0", "2,y,1")),
        goodTest, "label"), "column 'city' is string: expected a numeric feature");
    assertUsageError(tableArgs(csv("empty.csv", List.of("a,b,label")), goodTest, "label"),
        "--train " + dir.resolve("empty.csv") + " has no rows: expected at least one train row");
    assertUsageError(tableArgs(csv("null.csv", List.of("a,b,label", "1,2,0", "3,,1")), goodTest,
        "label"), "--train " + dir.resolve("null.csv") + " row 2, column 'b': null");
    assertUsageError(tableArgs(good, csv("nan.csv", List.of("a,b", "1,2", "NaN,3")), "label"),
        "--test " + dir.resolve("nan.csv") + " row 2, column 'a': NaN");
    // Checked before Spark starts:
    assertUsageError(tableArgs(dir.resolve("t.txt"), goodTest, "label"),
        "--train " + dir.resolve("t.txt") + ": expected a .parquet or .csv path");
    assertUsageError(tableArgs(good, dir.resolve("none.csv"), "label"),
        "--test " + dir.resolve("none.csv") + ": no such file");
  }

}
