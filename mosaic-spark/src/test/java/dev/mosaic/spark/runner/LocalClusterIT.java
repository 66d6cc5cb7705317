package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Ring attention over barrier tasks in two executor JVMs ({@code local-cluster[2,1,1024]}: two
 * workers with one core each) equals the local layer. This is the path no local[N] test covers:
 * closures, tensors and Mosaic's classes cross JVMs, executors load Mosaic from {@code spark.jars}
 * and get the JVM flags through {@code spark.executor.extraJavaOptions}, both set by
 * {@link SparkSessions} from the system properties failsafe passes (as {@code bin/mosaic} does).
 *
 * <p>Spark's launcher needs a Spark home: see {@link ItSparkHome}.
 */
@Timeout(150)
class LocalClusterIT {
  private static final String MASTER = "local-cluster[2,1,1024]";
  private static final String EXECUTOR_MAIN = "CoarseGrainedExecutorBackend";

  private static SparkSession spark;
  private static final Set<String> taskExecutors = ConcurrentHashMap.newKeySet();

  @BeforeAll
  static void startCluster() throws java.io.IOException {
    ItSparkHome.prepare();

    spark = SparkSessions.getOrCreate(MASTER, "mosaic-local-cluster-it", Map.of(
        "spark.ui.enabled", "false",
        "spark.executor.memory", "768m",
        "spark.barrier.sync.timeout", "30s",
        MosaicConfig.COMM_TIMEOUT, "30s",
        MosaicConfig.EXECUTOR_WAIT, "60s"));
    spark.sparkContext().addSparkListener(new SparkListener() {
      @Override
      public void onTaskEnd(SparkListenerTaskEnd end) {
        taskExecutors.add(end.taskInfo().executorId());
      }
    });
  }

  @AfterAll
  static void stopCluster() throws InterruptedException {
    if (spark == null) {
      return;
    }
    spark.stop();
    // Stopping the context kills the executor JVMs; none may outlive the test.
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (!executorProcesses().isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(200);
    }
    assertEquals(List.of(), executorProcesses(), "executor JVMs left running");
  }

  @Test
  void ringAcrossTwoExecutorJvmsEqualsLocal() throws InterruptedException {
    Random rnd = dev.mosaic.test.TestSeed.random();
    // Causal (zigzag shards) and a key bound (padded rows) on an odd length.
    check(rnd, new int[] {2, 157, 32}, 4, 1, true, Long.MAX_VALUE);
    check(rnd, new int[] {3, 61, 2, 16}, 2, -3, false, 50);

    long deadline = System.nanoTime() + 10_000_000_000L; // listener events arrive asynchronously
    while (taskExecutors.size() < 2 && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertEquals(2, taskExecutors.size(), "tasks ran on executors " + taskExecutors);
    assertFalse(taskExecutors.contains("driver"), "tasks ran in the driver: " + taskExecutors);
    // local-cluster starts each executor as a child process of this JVM.
    List<Long> pids = executorProcesses();
    assertEquals(2, pids.size(), "executor JVMs (child processes of the test): " + pids);
  }

  private static void check(Random rnd, int[] shape, int heads, int axis, boolean causal,
      long keyLimit) {
    int e = shape[shape.length - 1];
    Tensor x = Tensor.randn(rnd, 1f, shape);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    Tensor expected;
    try (MultiAxisAttention local = MultiAxisAttention.builder(e, heads, axis).weights(w)
        .causal(causal).threads(1).build()) {
      expected = local.forward(x, keyLimit);
    }
    Tensor actual = ShardedAttention.run(MosaicContext.init(spark, 2), x,
        new ShardedAttention.Spec(heads, axis, causal, keyLimit, w, "ring"));
    assertArrayEquals(x.shape(), actual.shape());
    double rel = RelativeError.of(actual, expected);
    assertTrue(rel < 1e-5, "relative error " + rel);
  }

  /** PIDs of the executor JVMs this JVM started (directly or not). */
  private static List<Long> executorProcesses() {
    return ProcessHandle.current().descendants()
        .filter(p -> p.isAlive() && p.info().arguments().map(a -> Stream.of(a)
            .anyMatch(s -> s.endsWith(EXECUTOR_MAIN))).orElse(false))
        .map(ProcessHandle::pid).toList();
  }
}
