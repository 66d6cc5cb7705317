package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Cancellation;
import dev.mosaic.kernels.CancelledException;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.gpu.Devices;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A cancelled job's tasks stop inside a long kernel call: Spark kills barrier tasks without
 * interrupting their threads, so the kernel asks the task's kill flag between tiles
 * ({@code Devices.taskCancellation}) and throws {@link CancelledException}. The call is sized to
 * run for tens of seconds here (80 s per task without the checks, 0.1 s after the cancel with
 * them); nothing is timed, the kernel's own exception is the evidence.
 */
@Timeout(300)
class TaskCancellationTest {
  private static final int P = 4;
  /** One forward of 16384 queries x 16384 keys, 4 heads of 64: ~2.7e11 flops per task. */
  private static final int N = 16384;
  private static final int HEADS = 4;
  private static final int HEAD_DIM = 64;

  static final Map<String, CountDownLatch> STARTED = new ConcurrentHashMap<>();
  static final Map<String, ConcurrentLinkedQueue<String>> OUTCOMES = new ConcurrentHashMap<>();

  @Test
  void aCancelledJobsKernelsStopBetweenTiles() throws Exception {
    List<String> outcomes = cancelWhileRunning(TaskCancellationTest::longKernel);
    assertEquals(P, outcomes.stream().filter(o -> o.startsWith("cancelled")).count(),
        "every task's kernel stopped with CancelledException: " + outcomes);
  }

  @Test
  void theTasksCancellationSeesTheKillWithoutAnInterrupt() throws Exception {
    List<String> outcomes = cancelWhileRunning(TaskCancellationTest::pollCancellation);
    assertEquals(P, outcomes.stream().filter(o -> o.startsWith("saw: Spark killed task")).count(),
        "every task saw its kill flag: " + outcomes);
  }

  /**
   * Runs {@code fn} as a barrier job in a job group, cancels the group once every task has
   * started (without interrupting threads, as a failed barrier stage's kill does), checks that
   * the job failed as cancelled, and returns how each task's call ended.
   */
  private static List<String> cancelWhileRunning(
      java.util.function.Function<String, ShardFunction<Integer, String>> fn) throws Exception {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), P)
        .with(MosaicConfig.TASK_THREADS, "1");
    String run = UUID.randomUUID().toString();
    STARTED.put(run, new CountDownLatch(P));
    OUTCOMES.put(run, new ConcurrentLinkedQueue<>());
    SparkContext sc = ctx.spark().sparkContext();
    String group = "mosaic-cancel-" + run;
    AtomicReference<Throwable> jobFailure = new AtomicReference<>();
    Thread driver = new Thread(() -> {
      sc.setJobGroup(group, "kernel cancellation test", false); // kills do not interrupt
      try {
        BarrierRunner.collect(ctx.jsc().parallelize(List.of(0, 1, 2, 3), P), fn.apply(run),
            ctx.config(), "cpu", String.class);
      } catch (Throwable t) {
        jobFailure.set(t);
      } finally {
        sc.clearJobGroup();
      }
    }, "cancellation-test-driver");
    try {
      driver.start();
      assertTrue(STARTED.get(run).await(120, TimeUnit.SECONDS), "every task started its call");
      sc.cancelJobGroup(group);
      driver.join(240_000);
      assertTrue(!driver.isAlive(), "the job ended after the cancel");
      assertInstanceOf(SparkException.class, jobFailure.get());
      assertTrue(jobFailure.get().getMessage().contains("cancelled"),
          jobFailure.get().getMessage());
      List<String> outcomes = awaitOutcomes(run);
      System.out.println("task calls: " + outcomes);
      return outcomes;
    } finally {
      STARTED.remove(run);
      OUTCOMES.remove(run);
    }
  }

  /** Every task polls {@code Devices.taskCancellation()} until it asks to stop (at most 120 s). */
  static ShardFunction<Integer, String> pollCancellation(String run) {
    return (env, records) -> {
      Cancellation c = Devices.taskCancellation();
      STARTED.get(run).countDown();
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while (c.reason() == null && System.nanoTime() < end) {
        Thread.sleep(10);
      }
      String why = c.reason();
      OUTCOMES.get(run).add(why == null ? "never saw the kill" : "saw: " + why);
      c.check();
      return List.of("rank " + env.rank()).iterator();
    };
  }

  /** Every task runs one long forward on its task kernel and reports how it ended. */
  static ShardFunction<Integer, String> longKernel(String run) {
    return (env, records) -> {
      Tensor q = Tensor.zeros(N, HEADS, HEAD_DIM);
      Tensor k = Tensor.zeros(N, HEADS, HEAD_DIM);
      Tensor v = Tensor.zeros(N, HEADS, HEAD_DIM);
      Tensor out = Tensor.zeros(N, HEADS, HEAD_DIM);
      float[] lse = new float[N * HEADS];
      String outcome = "threw nothing";
      long t0 = System.nanoTime();
      try (AttentionKernel kernel = env.kernel(1)) {
        STARTED.get(run).countDown();
        kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.125f,
            AttentionMask.NONE, BlockView.of(out), lse);
        outcome = "finished";
      } catch (CancelledException e) {
        outcome = e.getMessage(); // "cancelled: <why>"
        throw e;
      } finally {
        ConcurrentLinkedQueue<String> q2 = OUTCOMES.get(run);
        if (q2 != null) {
          q2.add(outcome + String.format(" after %.1f s", (System.nanoTime() - t0) / 1e9));
        }
      }
      return List.of("rank " + env.rank()).iterator();
    };
  }

  /** The tasks' reports: the job fails on the first kill, the others follow. */
  private static List<String> awaitOutcomes(String run) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
    while (OUTCOMES.get(run).size() < P && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    return new ArrayList<>(OUTCOMES.get(run));
  }
}
