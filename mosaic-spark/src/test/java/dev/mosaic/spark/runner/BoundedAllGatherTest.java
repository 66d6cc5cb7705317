package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.CommException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import org.apache.spark.SparkException;
import org.apache.spark.TaskContext;
import org.apache.spark.TaskKilledException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The rendezvous is bounded although Spark's barrier sync is not (365 days unless set): a task
 * that never reaches it fails its peers at {@code spark.mosaic.comm.timeout}, or at Spark's sync
 * timeout where that is shorter, with a one-line message that names the setting to raise.
 */
@Timeout(120)
class BoundedAllGatherTest {
  private static final int P = 4;
  /** TestSpark's spark.barrier.sync.timeout. */
  private static final Duration SPARK_SYNC = Duration.ofSeconds(20);
  /** How long the stuck task waits for its kill before giving up: far past every bound here. */
  private static final long STUCK_MS = 100_000;

  private final ConcurrentLinkedQueue<SparkListenerTaskEnd> ends = new ConcurrentLinkedQueue<>();
  private final SparkListener listener = new SparkListener() {
    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      ends.add(end);
    }
  };
  private MosaicContext ctx;

  @BeforeEach
  void setUp() {
    ctx = MosaicContext.init(TestSpark.get(), P);
    ctx.spark().sparkContext().addSparkListener(listener);
  }

  @AfterEach
  void tearDown() {
    ctx.spark().sparkContext().removeSparkListener(listener);
  }

  @Test
  void theBoundIsTheCommTimeoutUnlessSparksOwnIsNoLonger() {
    Duration comm = Duration.ofSeconds(15);
    assertEquals(comm, BoundedAllGather.bound(comm, BoundedAllGather.SPARK_SYNC_DEFAULT));
    assertEquals(comm, BoundedAllGather.bound(comm, Duration.ofSeconds(16)));
    // Spark's own fires first then (it answers every waiting task); ours is the backstop.
    assertEquals(Duration.ofSeconds(25), BoundedAllGather.bound(comm, comm));
    assertEquals(Duration.ofSeconds(20), BoundedAllGather.bound(comm, Duration.ofSeconds(10)));
  }

  @Test
  void sparksSyncTimeoutBecomesOneLineNamingTheSettings() {
    BoundedAllGather.TimedOut e = assertThrows(BoundedAllGather.TimedOut.class,
        () -> BoundedAllGather.run(() -> {
          throw new SparkException("The coordinator didn't get all barrier sync requests for"
              + " barrier epoch 0 from Stage 3 (Attempt 0) within 20 second(s).");
        }, Duration.ofSeconds(30), SPARK_SYNC, "task 1 of 4 (stage 3 attempt 0)"));
    assertEquals("Mosaic rendezvous: task 1 of 4 (stage 3 attempt 0) waited 20 s"
        + " (spark.barrier.sync.timeout) in BarrierTaskContext.allGather but not every task of"
        + " the stage arrived (a task cannot see which: one is stuck before the rendezvous, or"
        + " its executor is stopped or lost); if tasks need longer to start, raise"
        + " spark.barrier.sync.timeout and spark.mosaic.comm.timeout", e.getMessage());
    // Anything else Spark says stays the cause of a communication failure (transient: retried).
    SparkException other = new SparkException("stage cancelled");
    CommException wrapped = assertThrows(CommException.class, () -> BoundedAllGather.run(() -> {
      throw other;
    }, Duration.ofSeconds(30), SPARK_SYNC, "task 1 of 4"));
    assertEquals(other, wrapped.getCause());
  }

  @Test
  void aTaskThatNeverArrivesFailsItsPeersAtTheCommTimeout() {
    MosaicContext fast = ctx.with(MosaicConfig.COMM_TIMEOUT, "3s");
    long t0 = System.nanoTime();
    SparkException e = assertThrows(SparkException.class, () -> BarrierRunner.collect(
        stuckAtRank1(), (env, in) -> List.of(env.rank()).iterator(), fast.config(), "cpu",
        Integer.class));
    double seconds = (System.nanoTime() - t0) / 1e9;
    System.out.printf("peers of a stuck task failed after %.1f s: %s%n", seconds,
        e.getMessage().lines().limit(3).collect(Collectors.joining(" | ")));
    // Mosaic's bound fired, not Spark's 20 s one (whose message would name it).
    assertTrue(e.getMessage().contains("Mosaic rendezvous: task ")
        && e.getMessage().contains(" waited 3 s in BarrierTaskContext.allGather but not every"
            + " task of the stage arrived")
        && e.getMessage().contains("raise spark.mosaic.comm.timeout"), e.getMessage());
    awaitStageEnded();
  }

  @Test
  void sparksShorterSyncTimeoutAnswersEveryWaitingTaskAndLeavesNoThread() {
    // The comm timeout exceeds TestSpark's 20 s sync timeout: Spark's coordinator ends the round.
    MosaicContext slow = ctx.with(MosaicConfig.COMM_TIMEOUT, "60s");
    Set<Thread> before = rendezvousThreads();
    SparkException e = assertThrows(SparkException.class, () -> BarrierRunner.collect(
        stuckAtRank1(), (env, in) -> List.of(env.rank()).iterator(), slow.config(), "cpu",
        Integer.class));
    assertTrue(e.getMessage().contains("waited 20 s (spark.barrier.sync.timeout) in"
        + " BarrierTaskContext.allGather but not every task of the stage arrived"), e.getMessage());
    awaitStageEnded();
    long deadline = System.nanoTime() + 10_000_000_000L;
    List<Thread> left;
    do {
      left = new ArrayList<>(rendezvousThreads());
      left.removeAll(before);
      sleep(50);
    } while (!left.isEmpty() && System.nanoTime() < deadline);
    assertEquals(List.of(), left, "rendezvous threads left behind");
  }

  /** Partition 1 computes its input until Spark kills the task: it never reaches the rendezvous. */
  private JavaRDD<Integer> stuckAtRank1() {
    return ctx.jsc().parallelize(List.of(0, 1, 2, 3), P).mapPartitionsWithIndex((i, it) -> {
      if (i == 1) {
        TaskContext tc = TaskContext.get();
        long end = System.currentTimeMillis() + STUCK_MS;
        while (!tc.isInterrupted() && System.currentTimeMillis() < end) {
          Thread.sleep(50);
        }
        throw new TaskKilledException("stuck test task ends");
      }
      return it;
    }, true);
  }

  /** Every task of the last stage ended (the stuck one killed), so its slot is free again. */
  private void awaitStageEnded() {
    long deadline = System.nanoTime() + 30_000_000_000L;
    int stage = -1;
    int ended = 0;
    while (System.nanoTime() < deadline) {
      stage = ends.stream().mapToInt(SparkListenerTaskEnd::stageId).max().orElse(-1);
      int s = stage;
      ended = (int) ends.stream().filter(t -> t.stageId() == s).count();
      if (ended >= P) {
        return;
      }
      sleep(50);
    }
    assertFalse(true, "only " + ended + " of " + P + " tasks of stage " + stage + " ended");
  }

  private static Set<Thread> rendezvousThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && t.getName().startsWith("mosaic-rendezvous-"))
        .collect(Collectors.toSet());
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
