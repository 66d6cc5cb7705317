package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.model.ShippedModel;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mosaic demo}: nanoTabPFN (the shipped model by default, seeded, or a checkpoint) on a
 * prior table, checked against one JVM. No accuracy is asserted: the shipped file may be the
 * untrained placeholder.
 */
class DemoCommandTest {
  /** A report line of a stage: {@code stage 3   NAME   2 task(s)   1.0 s}. */
  private static final Pattern STAGE =
      Pattern.compile("^  stage (\\d+)\\s+(.*?)\\s+\\d+ task\\(s\\)");

  @TempDir
  Path dir;

  @Test
  @Timeout(1200)
  void theShippedModelByDefaultWithTheDatasetsTableAndItsCheck() {
    ShippedModel.Loaded shipped = ShippedModel.load();
    Result r = run("demo", "--rows", "200", "--features", "4", "--sp", "2", "--master",
        "local[2]", "--output", dir.resolve("shipped.parquet").toString(), "--check-rows", "200");
    System.out.println(r.out());
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("model: nanoTabPFN, " + shipped.description()), r.out());
    assertTrue(r.out().contains("(b) prior table: 200 rows x 4 features (160 train), 3 classes"),
        r.out());
    assertTrue(r.out().contains("-> OK"), r.out());
    // Part (a): every bundled dataset, the model next to both MLlib baselines, then as Markdown.
    assertTrue(r.out().contains("(a) bundled datasets, stratified 75/25 split"), r.out());
    for (String line : List.of("iris           nanoTabPFN",
        "wine           MLlib LogisticRegression",
        "breast_cancer  MLlib RandomForest", "mean           nanoTabPFN",
        "| dataset | rows | features | classes | Mosaic (nanoTabPFN) acc / AUC |"
            + " MLlib LogisticRegression acc / AUC | MLlib RandomForest acc / AUC |",
        "| iris | 150 | 4 | 3 |", "| wine | 178 | 13 | 3 |", "| breast_cancer | 569 | 30 | 2 |",
        "| **mean** | | | |")) {
      assertTrue(r.out().contains(line), line + " in " + r.out());
    }
    assertDistinctStageNames(r.out());
  }

  @Test
  @Timeout(1200)
  void seededWeightsRunAndPassTheCheck() {
    Result r = run("demo", "--rows", "300", "--features", "5", "--classes", "4", "--sp", "2",
        "--master", "local[2]", "--output", dir.resolve("seeded.parquet").toString(),
        "--check-rows", "300", "--seeded", "--no-datasets");
    System.out.println(r.out());
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("model: nanoTabPFN, seeded untrained weights"), r.out());
    assertTrue(r.out().contains("untrained model; majority class"), r.out());
    assertTrue(r.out().contains("-> OK"), r.out());
  }

  @Test
  @Timeout(1200)
  void noCheckSkipsItAndSaysSo() {
    Result r = run("demo", "--rows", "100", "--features", "3", "--sp", "2", "--master",
        "local[2]", "--output", dir.resolve("nocheck.parquet").toString(), "--seeded",
        "--no-datasets", "--no-check");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("  check: skipped (--no-check)"), r.out());
    assertFalse(r.out().contains("-> OK"), r.out());
  }

  @Test
  @Timeout(1200)
  void aCheckpointRunsInTheDemo() {
    Path model = fixture("small.model.safetensors");
    Result r = run("demo", "--rows", "200", "--features", "6", "--classes", "3", "--sp", "2",
        "--master", "local[2]", "--output", dir.resolve("ckpt.parquet").toString(),
        "--check-rows", "200", "--model", model.toString(), "--no-datasets");
    System.out.println(r.out());
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("model: nanoTabPFN, checkpoint " + model + " (2 heads)"),
        r.out());
    assertTrue(r.out().contains("-> OK"), r.out());
    assertFalse(r.out().contains("bundled datasets"), "--no-datasets skips part (a)");
  }

  @Test
  void badModelFlagsAreOneLineUsageErrors() {
    Path model = fixture("small.model.safetensors");
    int shippedOutputs = ShippedModel.load().shape().outputs();
    assertOneLine("mosaic demo: error: --classes 4 exceeds the 3 outputs of the model " + model,
        "demo", "--classes", "4", "--model", model.toString());
    assertOneLine("mosaic demo: error: --classes " + (shippedOutputs + 1) + " exceeds the "
        + shippedOutputs + " outputs of the shipped model", "demo", "--classes",
        Integer.toString(shippedOutputs + 1));
    assertOneLine("mosaic demo: error: --num-heads goes with --model (the shipped model's heads"
        + " are in its metadata, the seeded model has 2)", "demo", "--num-heads", "4");
    assertOneLine("mosaic demo: error: --seeded and --model both choose the weights: give one of"
        + " them", "demo", "--seeded", "--model", model.toString());
    assertOneLine("mosaic demo: error: checkpoint " + model + ": numHeads 3 does not divide the"
        + " embedding width 16: expected a divisor of 16", "demo", "--model", model.toString(),
        "--num-heads", "3");
    assertOneLine("mosaic demo: error: --check and --no-check contradict each other: give one of"
        + " them", "demo", "--check", "--no-check");
    assertOneLine("mosaic demo: error: --classes must be in 2..rows/2 (5 for --rows 10), got 6",
        "demo", "--rows", "10", "--classes", "6");
  }

  private static void assertOneLine(String expected, String... args) {
    Result r = run(args);
    assertEquals(2, r.code(), r.err());
    assertEquals(List.of(expected), r.err().strip().lines().toList());
  }

  private static void assertDistinctStageNames(String report) {
    Set<String> names = new HashSet<>();
    int stages = 0;
    for (String line : report.lines().toList()) {
      Matcher m = STAGE.matcher(line);
      if (m.find()) {
        stages++;
        assertTrue(names.add(m.group(2)), "two stages named '" + m.group(2) + "':\n" + report);
      }
    }
    assertTrue(stages >= 3, "expected the shard, model and write stages:\n" + report);
  }

  private static Path fixture(String file) {
    try {
      return Path.of(DemoCommandTest.class.getResource("/fixtures/nanotabpfn/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }
}
