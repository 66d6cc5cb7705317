package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.faults.FaultCluster;
import dev.mosaic.spark.faults.FaultPlan;
import dev.mosaic.spark.jobs.ParquetOutput;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.TabularConfig;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * SIGSTOP of an executor JVM mid-ring (a hung machine: the process and its sockets stay, nothing
 * answers). What happens, on {@code local-cluster[2,1,1024]} with the tabular job (several rings,
 * so rank 0 always comes to wait for the stopped rank 1):
 * <ol>
 *   <li>rank 0 waits for rank 1's next block and gives up after {@code spark.mosaic.comm.timeout}
 *       with an error that names rank 1; that fails the barrier stage attempt at once;
 *   <li>Spark cannot start the retry while the stopped task holds its slot; the executor stops
 *       sending heartbeats, and after {@code spark.network.timeout} Spark declares it lost and has
 *       the worker kill it (SIGTERM, then SIGKILL after 10 s: a stopped JVM does not act on
 *       SIGTERM) and start a replacement;
 *   <li>the stage retry then runs on the replacement and the output is complete and exact. (The
 *       retry may first be launched before Spark has noticed that the stopped executor's shuffle
 *       output is gone: one task fails with FetchFailed before the rendezvous, and Spark does not
 *       kill its peer, which gives up on the rendezvous after the comm timeout.)
 * </ol>
 * No one intervenes: the test only checks that this ends within those bounds (the network timeout
 * is 12 s here instead of the default 120 s). The stopped JVM is continued and killed in a finally
 * in case the test fails before Spark kills it.
 */
@Timeout(240)
class ExecutorStopFaultIT {
  private static final int SP = 2;
  private static final long COMM_TIMEOUT_S = 6;
  /** Scheduling, the runner's 2 s wait for a kill before reporting, a loaded machine. */
  private static final long SLACK_S = 20;
  private static FaultCluster cluster;
  private static final ConcurrentLinkedQueue<Failure> failures = new ConcurrentLinkedQueue<>();

  /** A failed task as the driver heard of it, and when. */
  private record Failure(long nanos, String reason) {}

  /** The stopped executor JVM, and when the test saw it stopped. */
  private record Stopped(ProcessHandle process, long nanos) {}

  @BeforeAll
  static void startCluster() throws Exception {
    ItSparkHome.prepare();
    cluster = FaultCluster.start("mosaic-executor-stop-fault-it", SP,
        Path.of("target", "fault-it", "stop").toAbsolutePath(), Map.of(
            // Spark notices a silent executor after 12 s (default 120 s), checking every second.
            "spark.network.timeout", "12s",
            "spark.network.timeoutInterval", "1s",
            "spark.executor.heartbeatInterval", "1s",
            MosaicConfig.COMM_TIMEOUT, COMM_TIMEOUT_S + "s"));
    cluster.spark().sparkContext().addSparkListener(new SparkListener() {
      @Override
      public void onTaskEnd(SparkListenerTaskEnd end) {
        if (!end.taskInfo().successful()) {
          failures.add(new Failure(System.nanoTime(), end.reason().toString()));
        }
      }
    });
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void stoppedExecutorFailsTheStageWithinTheCommTimeoutAndTheRetryIsExact() throws Exception {
    int rows = 600;
    int features = 8;
    int classes = 3;
    long nTrain = 480;
    long seed = 13;
    TabularConfig cfg = TabularConfig.defaults(features, classes);
    TabularExpectation expected = TabularExpectation.of(rows, features, classes, nTrain, seed,
        cfg);
    Path out = Path.of("target", "fault-it", "stop", "tabular.parquet").toAbsolutePath();

    String id = cluster.plan().install(Map.of(1, FaultPlan.Action.STOP_IN_RING));
    CompletableFuture<Stopped> stopped = CompletableFuture.supplyAsync(() -> {
      try {
        ProcessHandle p = FaultCluster.process(cluster.plan().awaitMarker(id, "pid", 120_000));
        FaultCluster.awaitStopped(p, 30_000);
        return new Stopped(p, System.nanoTime());
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    Stopped stop = null;
    try {
      Dataset<Row> table = TabularJob.synthetic(cluster.spark(), rows, features, classes, seed,
          SP);
      ParquetOutput.write(TabularJob.predict(MosaicContext.init(cluster.spark(), SP), table, rows,
          nTrain, cfg, null), out.toString());
      stop = stopped.get(10, TimeUnit.SECONDS);

      expected.check(cluster.spark().read().parquet(out.toString()).collectAsList());
      Failure first = failures.stream().filter(f -> f.reason().contains("timed out"))
          .findFirst().orElseThrow(() -> new AssertionError("no task timed out: " + failures));
      assertTrue(first.reason().contains("rank 1"), "the error names the stopped rank: "
          + first.reason());
      double seconds = (first.nanos() - stop.nanos()) / 1e9;
      assertTrue(seconds < COMM_TIMEOUT_S + SLACK_S, "the stage failed " + seconds
          + " s after rank 1 stopped");
      System.out.printf("rank 1 stopped; stage attempt failed %.1f s later: %s%n", seconds,
          first.reason().lines().findFirst().orElse(""));
      assertFalse(stop.process().isAlive(), "Spark killed the stopped executor");
    } finally {
      if (stop == null && stopped.isDone() && !stopped.isCompletedExceptionally()) {
        stop = stopped.get();
      }
      if (stop != null) {
        FaultCluster.release(stop.process());
      }
    }
  }
}
