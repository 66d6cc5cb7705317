package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.SparkException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Many barrier jobs in one SparkContext leave nothing behind: no communicator, kernel or layer
 * threads stay alive, and the process does not accumulate file descriptors (sockets, listeners),
 * after successful jobs and after failed ones.
 */
@Timeout(60)
class BarrierLeakTest {
  private static final int P = 4;
  private static final List<String> PREFIXES =
      List.of("mosaic-comm-", "mosaic-kernel-", "mosaic-layer-");
  /** Spark itself may open a few descriptors lazily; a leaking mesh loses 3+ per task per job. */
  private static final int FD_SLACK = 4;
  private static final long GRACE_MS = 10_000;

  private final Random rnd = new Random(7);
  private MosaicContext ctx;

  @BeforeEach
  void setUp() {
    // Two compute threads per task so that the kernel and layer pools really start threads.
    ctx = MosaicContext.init(TestSpark.get(), P).with(MosaicConfig.TASK_THREADS, "2")
        .with(MosaicConfig.COMM_TIMEOUT, "60s");
  }

  @Test
  void manyRingJobsLeaveNoThreadsOrDescriptors() {
    int e = 16;
    Tensor x = Tensor.randn(rnd, 1f, 2, 67, e);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    Tensor[] expected = new Tensor[2];
    for (int c = 0; c < 2; c++) {
      try (MultiAxisAttention local = MultiAxisAttention.builder(e, 2, 1).weights(w)
          .causal(c == 1).threads(2).build()) {
        expected[c] = local.forward(x);
      }
    }
    Supplier<Tensor>[] job = jobs(x, w);
    // Warm up: Spark opens some descriptors (jars, shuffle dirs) on first use.
    job[1].get();
    Set<Thread> before = mosaicThreads();
    int fdBefore = awaitFds(Integer.MAX_VALUE);

    List<Integer> fds = new ArrayList<>();
    for (int i = 0; i < 15; i++) {
      Tensor y = job[i % 2].get();
      assertClose(expected[i % 2], y, "job " + i);
      fds.add(openFds());
    }
    System.out.println("open descriptors: before " + fdBefore + ", after each job " + fds);
    assertNoNewThreads(before);
    int fdAfter = awaitFds(fdBefore + FD_SLACK);
    assertTrue(fdAfter <= fdBefore + FD_SLACK,
        "descriptors grew from " + fdBefore + " to " + fdAfter + " over 15 jobs: " + fds);
  }

  @Test
  void failedJobsLeaveNoThreadsOrDescriptors() {
    String none = "no-records";
    // Warm up with one good job before the baseline.
    assertEquals(BarrierFailureTest.expectedRing(P), ring(BarrierFailureTest.ring(none, -1, -1),
        false).collect());
    Set<Thread> before = mosaicThreads();
    int fdBefore = awaitFds(Integer.MAX_VALUE);

    List<Integer> fds = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      failMidRing(none);
      fds.add(openFds());
      failBeforeRendezvous(none);
      fds.add(openFds());
    }
    System.out.println("open descriptors: before " + fdBefore + ", after each failed job " + fds);
    // And the context still works.
    assertEquals(BarrierFailureTest.expectedRing(P), ring(BarrierFailureTest.ring(none, -1, -1),
        false).collect());
    assertNoNewThreads(before);
    int fdAfter = awaitFds(fdBefore + FD_SLACK);
    assertTrue(fdAfter <= fdBefore + FD_SLACK,
        "descriptors grew from " + fdBefore + " to " + fdAfter + " over 6 failed jobs: " + fds);
  }

  /** Rank 1 throws at ring step 2 while its peers wait (barrier ResultStage: the job fails). */
  private void failMidRing(String run) {
    SparkException ex = assertThrows(SparkException.class,
        () -> ring(BarrierFailureTest.ring(run, 1, 2), false).collect());
    assertTrue(ex.getMessage().contains("barrier"), ex.getMessage());
  }

  /** Partition 1 fails while computing its input, its peers wait in the rendezvous. */
  private void failBeforeRendezvous(String run) {
    SparkException ex = assertThrows(SparkException.class,
        () -> ring(BarrierFailureTest.ring(run, -1, -1), true).collect());
    assertTrue(ex.getMessage().contains("barrier"), ex.getMessage());
  }

  private JavaRDD<String> ring(ShardFunction<Integer, String> fn, boolean failBeforeRendezvous) {
    JavaRDD<Integer> in = ctx.jsc().parallelize(List.of(0, 1, 2, 3), P);
    if (failBeforeRendezvous) {
      in = in.mapPartitionsWithIndex((i, it) -> {
        if (i == 1) {
          Thread.sleep(300); // the peers are in the rendezvous by now
          throw new IllegalStateException("injected failure before the rendezvous, attempt "
              + TaskContext.get().stageAttemptNumber());
        }
        return it;
      }, true);
    }
    return BarrierRunner.run(in, fn, ctx.config(), String.class);
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private Supplier<Tensor>[] jobs(Tensor x, AttentionWeights w) {
    return new Supplier[] {
        () -> ShardedAttention.run(ctx, x,
            new ShardedAttention.Spec(2, 1, false, Long.MAX_VALUE, w, "ring")),
        () -> ShardedAttention.run(ctx, x,
            new ShardedAttention.Spec(2, 1, true, Long.MAX_VALUE, w, "ring"))};
  }

  private static void assertClose(Tensor expected, Tensor actual, String what) {
    double err = RelativeError.of(actual, expected);
    assertTrue(err < 1e-5, what + ": relative error " + err);
  }

  static Set<Thread> mosaicThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && PREFIXES.stream().anyMatch(t.getName()::startsWith))
        .collect(Collectors.toSet());
  }

  /** Waits up to the grace period for every Mosaic thread not in {@code before} to end. */
  static void assertNoNewThreads(Set<Thread> before) {
    long deadline = System.currentTimeMillis() + GRACE_MS;
    List<Thread> extra;
    do {
      extra = new ArrayList<>(mosaicThreads());
      extra.removeAll(before);
      if (extra.isEmpty()) {
        return;
      }
      sleep(50);
    } while (System.currentTimeMillis() < deadline);
    StringBuilder sb = new StringBuilder(extra.size() + " Mosaic thread(s) still alive:");
    for (Thread t : extra) {
      sb.append("\n  ").append(t.getName()).append(" ").append(t.getState());
      for (StackTraceElement el : t.getStackTrace()) {
        sb.append("\n    at ").append(el);
      }
    }
    throw new AssertionError(sb.toString());
  }

  /** This process's open descriptors; skips the test where /proc is not available. */
  static int openFds() {
    Path dir = Path.of("/proc/self/fd");
    assumeTrue(Files.isDirectory(dir), "needs /proc/self/fd");
    try (Stream<Path> s = Files.list(dir)) {
      return (int) s.count();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The descriptor count once it is at most {@code bound}, or after the grace period. */
  static int awaitFds(int bound) {
    long deadline = System.currentTimeMillis() + (bound == Integer.MAX_VALUE ? 1_000 : GRACE_MS);
    int n = openFds();
    while (n > bound && System.currentTimeMillis() < deadline) {
      sleep(50);
      n = openFds();
    }
    if (bound == Integer.MAX_VALUE) {
      // Baseline: let descriptors of earlier work settle, take the smallest recent count.
      List<Integer> seen = new ArrayList<>(List.of(n));
      while (System.currentTimeMillis() < deadline) {
        sleep(50);
        seen.add(openFds());
      }
      n = Collections.min(seen);
    }
    return n;
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }
}
