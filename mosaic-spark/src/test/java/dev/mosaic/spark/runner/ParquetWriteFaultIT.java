package dev.mosaic.spark.runner;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.udf;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.faults.FailFirstAttempt;
import dev.mosaic.spark.faults.FaultCluster;
import dev.mosaic.spark.jobs.ParquetOutput;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.TabularConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;

/**
 * A failure while the tabular job's predictions are written as Parquet
 * ({@link ParquetOutput#write}, as {@code mosaic demo} writes them) leaves no partial output: the
 * path holds the complete new result, or what it held before (nothing, or the previous result),
 * and no staging folder is left beside it. A failure of one write task's first attempt is retried
 * by Spark and the result is complete. Executors are separate JVMs ({@code local-cluster}), so the
 * files are written as on a cluster: by executors, committed by the driver.
 */
@Timeout(300) // a hang guard: two jobs and a write retried 4 times on local-cluster, loaded 2 cores
class ParquetWriteFaultIT {
  private static final int SP = 2;
  private static final int ROWS = 400;
  private static final int FEATURES = 4;
  private static final int CLASSES = 3;
  private static final long N_TRAIN = 300;
  private static final long SEED = 7;
  private static final long BAD_ROW = 333;
  private static final TabularConfig CFG = TabularConfig.defaults(FEATURES, CLASSES);
  private static final Path WORK = Path.of("target", "fault-it", "parquet").toAbsolutePath();

  private static FaultCluster cluster;
  private static TabularExpectation expected;
  private Path out;

  @BeforeAll
  @Timeout(180)
  static void startCluster() throws Exception {
    ItSparkHome.prepare();
    cluster = FaultCluster.start("mosaic-parquet-write-fault-it", SP, WORK, Map.of());
    expected = TabularExpectation.of(ROWS, FEATURES, CLASSES, N_TRAIN, SEED, CFG);
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) {
      cluster.close();
    }
  }

  @BeforeEach
  void freshOutputFolder(TestInfo test) throws Exception {
    Path parent = WORK.resolve(test.getTestMethod().orElseThrow().getName());
    deleteTree(parent);
    Files.createDirectories(parent);
    out = parent.resolve("predictions.parquet");
  }

  @Test
  void failedWriteToANewPathLeavesNothing() throws Exception {
    assertThrows(Exception.class,
        () -> ParquetOutput.write(failingOnEveryAttempt(), out.toString()));
    assertFalse(Files.exists(out), "a failed write left " + out);
    assertEquals(List.of(), siblings(), "leftovers beside the output");
  }

  @Test
  void failedOverwriteKeepsThePreviousResult() throws Exception {
    ParquetOutput.write(predictions(), out.toString());
    assertThrows(Exception.class,
        () -> ParquetOutput.write(failingOnEveryAttempt(), out.toString()));
    expected.check(read());
    assertEquals(List.of("predictions.parquet"), siblings());
  }

  @Test
  void writeTaskFailingOnceIsRetriedAndTheResultIsComplete() throws Exception {
    Dataset<Row> flaky = predictions().withColumn("row_id",
        udf(new FailFirstAttempt(BAD_ROW), DataTypes.LongType).apply(col("row_id")));
    ParquetOutput.write(flaky, out.toString());
    expected.check(read());
    assertEquals(List.of("predictions.parquet"), siblings());
    assertTrue(Files.exists(out.resolve("_SUCCESS")));
  }

  private static Dataset<Row> predictions() {
    MosaicContext ctx = MosaicContext.init(cluster.spark(), SP);
    Dataset<Row> table = TabularJob.synthetic(cluster.spark(), ROWS, FEATURES, CLASSES, SEED, SP);
    return TabularJob.predict(ctx, table, ROWS, N_TRAIN, CFG, null);
  }

  /** The predictions with a write-stage task that fails on every attempt (at row BAD_ROW). */
  private static Dataset<Row> failingOnEveryAttempt() {
    return predictions().withColumn("prediction", expr("CASE WHEN row_id = " + BAD_ROW
        + " THEN raise_error('injected failure while writing') ELSE prediction END"));
  }

  private List<Row> read() {
    return cluster.spark().read().parquet(out.toString()).collectAsList();
  }

  /** Names in the output's folder, hidden ones included. */
  private List<String> siblings() throws Exception {
    try (Stream<Path> s = Files.list(out.getParent())) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static void deleteTree(Path p) throws Exception {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(x);
      }
    }
  }
}
