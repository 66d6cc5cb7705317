package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.PredictCli.assertUsageError;
import static dev.mosaic.spark.cli.PredictCli.model;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mosaic predict}, table form without Spark: two tables in memory become the model's input
 * or a one-line error that names the table, the column and the row.
 */
class PredictTablesTest {
  @TempDir
  Path dir;

  private String[] tableArgs(Path train, Path test, String label, String... more) {
    List<String> a = new ArrayList<>(List.of("predict", "--model", model("small").toString(),
        "--train", train.toString(), "--test", test.toString(), "--label", label, "--output",
        dir.resolve("pred.parquet").toString(), "--threads", "2"));
    a.addAll(List.of(more));
    return a.toArray(new String[0]);
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

  /** A table in memory: {@code columns} as "name:type" (double, float, int, string, boolean). */
  private static PredictTables.Table table(String name, String columns, Object[]... rows) {
    StructType schema = new StructType();
    for (String c : columns.split(",")) {
      String[] nt = c.split(":");
      schema = schema.add(nt[0], switch (nt[1]) {
        case "double" -> DataTypes.DoubleType;
        case "float" -> DataTypes.FloatType;
        case "int" -> DataTypes.IntegerType;
        case "string" -> DataTypes.StringType;
        case "boolean" -> DataTypes.BooleanType;
        default -> throw new IllegalArgumentException(c);
      }, true);
    }
    return new PredictTables.Table(name, schema,
        Arrays.stream(rows).map(RowFactory::create).toList());
  }

  private static Object[] row(Object... values) {
    return values;
  }

  /** One line that holds each part. */
  private static void assertBad(PredictTables.Table train, PredictTables.Table test, String label,
      String... parts) {
    UserError e = assertThrows(UserError.class,
        () -> PredictTables.fromTables(train, test, label));
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "expected '" + p + "' in: " + e.getMessage());
    }
  }

  @Test
  void tablesBecomeTrainRowsFirstThenTestRows() {
    assertBad(table("--train t", "a:double,label:int,b:float", row(1.5, 0, 2f)),
        table("--test s", "b:float,a:double", row(7f, 8.0)), "label",
        "--test s has feature columns [b, a], --train t has [a, b]: expected the same names in"
            + " the same order (the test table may leave out the label 'label')");
    PredictTables.Input in = PredictTables.fromTables(
        table("--train t", "a:double,label:int,b:float", row(1.5, 0, 2f), row(2.5, 2, 3f)),
        table("--test s", "label:int,a:double,b:float", row(null, 8.0, 7f)), "label");
    assertArrayEquals(new int[] {3, 2}, in.x().shape());
    assertArrayEquals(new float[] {1.5f, 2f, 2.5f, 3f, 8f, 7f}, in.x().data());
    assertArrayEquals(new float[] {0, 2}, in.yTrain());
    assertEquals(1, in.testRows().size());
  }

  @Test
  void badTablesAreOneLine() {
    PredictTables.Table good = table("--train t", "a:double,b:int,label:int", row(1.5, 2, 0),
        row(2.5, 3, 1));
    PredictTables.Table goodTest = table("--test s", "a:double,b:int", row(1.0, 2));
    assertBad(table("--train t", "a:double,city:string,label:int", row(1.0, "x", 0)), goodTest,
        "label", "--train t: column 'city' is string: expected a numeric feature");
    assertBad(good, table("--test s", "a:double,b:boolean", row(1.0, true)), "label",
        "--test s: column 'b' is boolean: expected a numeric feature");
    assertBad(good, goodTest, "target",
        "--label target: --train t has no such column; its columns are [a, b, label]");
    assertBad(table("--train t", "a:double,label:string", row(1.0, "cat")), goodTest, "label",
        "--label label in --train t is string: expected numeric class ids");
    assertBad(table("--train t", "label:int", row(1)), goodTest, "label",
        "--train t has no feature columns besides the label 'label'");
    assertBad(table("--train t", "a:double,b:int,label:int"), goodTest, "label",
        "--train t has no rows: expected at least one train row");
    assertBad(good, table("--test s", "a:double,b:int"), "label",
        "--test s has no rows: expected at least one row to predict");
    assertBad(good, table("--test s", "a:double", row(1.0)), "label",
        "--test s has feature columns [a], --train t has [a, b]");
    assertBad(table("--train t", "a:double,b:int,label:int", row(1.0, 2, 0), row(3.0, null, 1)),
        goodTest, "label", "--train t row 2, column 'b': null; expected a finite number");
    assertBad(good, table("--test s", "a:double,b:int", row(1.0, 2), row(Double.NaN, 3)),
        "label", "--test s row 2, column 'a': NaN");
    assertBad(good, table("--test s", "a:double,b:int", row(Double.NEGATIVE_INFINITY, 3)),
        "label", "--test s row 1, column 'a': -Infinity");
    assertBad(good, table("--test s", "a:double,b:int", row(1e300, 3)), "label",
        "--test s row 1, column 'a': 1.0E300; expected a finite number that fits float32");
    assertBad(table("--train t", "a:double,label:double", row(1.0, 0.0), row(3.0, 1.5)),
        table("--test s", "a:double", row(1.0)), "label",
        "--train t row 2: label 'label' is 1.5; expected a class id");
    assertBad(table("--train t", "a:double,label:int", row(1.0, -1)),
        table("--test s", "a:double", row(1.0)), "label", "row 1: label 'label' is -1");
    assertBad(table("--train t", "a:double,label:int", row(1.0, 0), row(1.0, null)),
        table("--test s", "a:double", row(1.0)), "label", "row 2: label 'label' is null");
    assertBad(table("--train t", "a:double,prediction:int,label:int", row(1.0, 2, 0)),
        table("--test s", "a:double,prediction:int", row(1.0, 2)), "label",
        "--test s already has a column 'prediction', which the output adds");
  }

  @Test
  void badCheckpointsReachTheTableFormAsOneLine() {
    Path train = csv("train.csv", List.of("a,b,label", "1.5,2,0", "2.5,3,1"));
    Path test = csv("test.csv", List.of("a,b", "1,2"));
    Map<String, Tensor> tensors = new java.util.LinkedHashMap<>(Safetensors.read(model("small")));
    Path noHeads = dir.resolve("noheads.safetensors");
    Safetensors.write(noHeads, tensors);
    String[] args = tableArgs(train, test, "label");
    args[2] = noHeads.toString();
    assertUsageError(args, "has no __metadata__ num_attention_heads");
    tensors.remove("feature_encoder.linear_layer.bias");
    Safetensors.write(noHeads, tensors, Map.of("num_attention_heads", "2"));
    assertUsageError(args, "is missing tensor 'feature_encoder.linear_layer.bias'");
  }
}
