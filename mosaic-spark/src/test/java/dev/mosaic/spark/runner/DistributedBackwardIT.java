package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The ring and Ulysses backward across two executor JVMs ({@code local-cluster[2,1,1024]}): the
 * K/V blocks and their dK/dV accumulators (ring) or the transposed all-to-alls (Ulysses) cross
 * process boundaries over TCP, and the gradients still equal the reference backward. Set-up as in
 * {@link LocalClusterIT}.
 */
@Timeout(600)
class DistributedBackwardIT {
  private static SparkSession spark;
  private static final Set<String> taskExecutors = ConcurrentHashMap.newKeySet();

  @BeforeAll
  static void startCluster() throws java.io.IOException {
    ItSparkHome.prepare();
    spark = SparkSessions.getOrCreate("local-cluster[2,1,1024]", "mosaic-backward-it", Map.of(
        "spark.ui.enabled", "false",
        "spark.executor.memory", "768m",
        "spark.barrier.sync.timeout", "30s",
        MosaicConfig.COMM_TIMEOUT, "30s",
        MosaicConfig.EXECUTOR_WAIT, "300s")); // executor JVMs took over 60 s to start under load
    spark.sparkContext().addSparkListener(new SparkListener() {
      @Override
      public void onTaskEnd(SparkListenerTaskEnd end) {
        taskExecutors.add(end.taskInfo().executorId());
      }
    });
  }

  @AfterAll
  static void stopCluster() {
    if (spark != null) {
      spark.stop();
    }
  }

  @Test
  void ringAndUlyssesBackwardAcrossTwoExecutorJvmsEqualTheReference()
      throws InterruptedException {
    Random rnd = dev.mosaic.test.TestSeed.random();
    MosaicContext ctx = MosaicContext.init(spark, 2);
    BackwardExpectation.check(ctx, rnd, Backends.RING, ShardLayout.zigzag(157, 2), true,
        Long.MAX_VALUE);
    BackwardExpectation.check(ctx, rnd, Backends.RING, ShardLayout.contiguous(new int[] {61, 38}),
        false, 80);
    BackwardExpectation.check(ctx, rnd, Backends.ULYSSES, ShardLayout.zigzag(101, 2), true, 90);

    long deadline = System.nanoTime() + 10_000_000_000L; // listener events arrive asynchronously
    while (taskExecutors.size() < 2 && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertEquals(2, taskExecutors.size(), "tasks ran on executors " + taskExecutors);
    assertFalse(taskExecutors.contains("driver"), "tasks ran in the driver: " + taskExecutors);
  }
}
