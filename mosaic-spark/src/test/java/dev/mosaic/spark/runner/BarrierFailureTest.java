package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.Communicator;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import org.apache.spark.SparkException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A task that fails, mid-ring or before the rendezvous, ends its whole barrier stage attempt in
 * seconds (no peer waits for the 60 s communicator timeout), and Spark's stage retry then produces
 * correct results.
 *
 * <p>What Spark does with a failed barrier stage (checked here, Spark 4.2, local[4,2]): it kills the
 * other tasks of the attempt (without interrupting their threads) and then
 * <ul>
 *   <li>if the barrier stage is a <b>ResultStage</b> (the runner's RDD fed straight into an action,
 *       as {@link ShardedAttention#run} does with {@code collect()}), aborts the job: "Could not
 *       recover from a failed barrier ResultStage". There is no retry;
 *   <li>if it is a <b>ShuffleMapStage</b> (the runner's RDD is followed by a shuffle), resubmits the
 *       whole stage, up to {@code spark.stage.maxConsecutiveAttempts} (default 4) attempts. The
 *       master's task-failure count ({@code local[4,2]}) plays no part.
 * </ul>
 * The killed tasks keep their slots until their threads really end, so a retry (or the next job)
 * only starts once every peer of the failed attempt is gone.
 */
@Timeout(60)
class BarrierFailureTest {
  /** Far above every bound asserted here: a pass cannot come from a communicator timeout. */
  private static final String COMM_TIMEOUT = "60s";
  private static final int P = 4;
  private static final double FAST_SECONDS = 8;

  /** What each task of each run did, keyed by run id (tasks run in this JVM in local mode). */
  static final Map<String, ConcurrentLinkedQueue<TaskRecord>> RECORDS = new ConcurrentHashMap<>();

  /** One task attempt, as seen by its own code. */
  record TaskRecord(int stageId, int stageAttempt, int rank, long startNanos, long endNanos,
      String failure) {}

  /** One task end, as seen by the scheduler (includes the runner's communicator close). */
  record TaskEnd(int stageId, int stageAttempt, int partition, long launchMs, long finishMs,
      String reason) {}

  private final ConcurrentLinkedQueue<TaskEnd> taskEnds = new ConcurrentLinkedQueue<>();
  private final SparkListener listener = new SparkListener() {
    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      taskEnds.add(new TaskEnd(end.stageId(), end.stageAttemptId(), end.taskInfo().index(),
          end.taskInfo().launchTime(), end.taskInfo().finishTime(), end.reason().toString()));
    }
  };
  private MosaicContext ctx;
  private String run;

  @BeforeEach
  void setUp() {
    ctx = MosaicContext.init(TestSpark.get(), P).with(MosaicConfig.COMM_TIMEOUT, COMM_TIMEOUT);
    ctx.spark().sparkContext().addSparkListener(listener);
    run = UUID.randomUUID().toString();
    RECORDS.put(run, new ConcurrentLinkedQueue<>());
  }

  @AfterEach
  void tearDown() {
    ctx.spark().sparkContext().removeSparkListener(listener);
    RECORDS.remove(run);
  }

  /**
   * A ring of {@code p-1} sendRecv steps: rank r sends what it last received to r+1 and receives
   * from r-1, so it ends with the values r-1, r-2, ... (mod p). On stage attempt 0, rank
   * {@code failRank} throws at step {@code failStep} after a pause, while its peers already wait
   * on that step's receive. The error is transient (an I/O error, {@link RetryPolicy}), so Spark
   * retries the stage; {@link NonRetryableFailureTest} covers errors a retry would repeat.
   */
  static ShardFunction<Integer, String> ring(String run, int failRank, int failStep) {
    return (env, records) -> {
      TaskContext tc = TaskContext.get();
      long start = System.nanoTime();
      String failure = null;
      try {
        Communicator comm = env.comm();
        int r = env.rank();
        int p = env.size();
        float[] send = {r};
        List<Integer> got = new ArrayList<>();
        for (int step = 1; step < p; step++) {
          if (r == failRank && step == failStep && tc.stageAttemptNumber() == 0) {
            Thread.sleep(500); // the peers are now blocked in this step's receive
            // An I/O error is transient (RetryPolicy): Spark's stage retry applies to it.
            throw new java.io.IOException("injected failure of rank " + r + " at step " + step);
          }
          float[] recv = new float[1];
          comm.sendRecv(send, 0, 1, (r + 1) % p, recv, 0, 1, (r - 1 + p) % p).await();
          got.add((int) recv[0]);
          send = recv;
        }
        return List.of(r + ":" + got).iterator();
      } catch (Exception | Error e) {
        failure = e.toString();
        throw e;
      } finally {
        ConcurrentLinkedQueue<TaskRecord> q = RECORDS.get(run);
        if (q != null) {
          q.add(new TaskRecord(tc.stageId(), tc.stageAttemptNumber(), env.rank(), start,
              System.nanoTime(), failure));
        }
      }
    };
  }

  static List<String> expectedRing(int p) {
    List<String> out = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      List<Integer> got = new ArrayList<>();
      for (int s = 1; s < p; s++) {
        got.add(((r - s) % p + p) % p);
      }
      out.add(r + ":" + got);
    }
    return out;
  }

  private JavaRDD<Integer> shards() {
    return ctx.jsc().parallelize(List.of(0, 1, 2, 3), P);
  }

  /** The runner's output through a shuffle, so that the barrier stage is a ShuffleMapStage. */
  private static List<String> viaShuffle(JavaRDD<String> out) {
    List<String> all = new ArrayList<>(out.repartition(1).collect());
    Collections.sort(all);
    return all;
  }

  @Test
  void rankFailingMidRingEndsTheAttemptFastAndTheStageRetrySucceeds() {
    long t0 = System.nanoTime();
    List<String> result = viaShuffle(
        BarrierRunner.run(shards(), ring(run, 1, 2), ctx.config(), String.class));
    double seconds = (System.nanoTime() - t0) / 1e9;

    assertEquals(expectedRing(P), result);
    List<TaskRecord> recs = new ArrayList<>(RECORDS.get(run));
    List<TaskRecord> first = attempt(recs, 0);
    List<TaskRecord> retry = attempt(recs, 1);
    assertEquals(P, first.size(), "every task of the failed attempt ended: " + recs);
    assertEquals(P, retry.size(), "the whole stage was retried once: " + recs);
    assertTrue(retry.stream().allMatch(t -> t.failure() == null), "retry failed: " + retry);
    assertTrue(first.get(1).failure().contains("injected failure"), first.toString());
    // The peers did not wait for the comm timeout: those that needed rank 1 saw its sockets
    // close (directly or through the ring), well within the bound. (Rank 0 may even finish: rank
    // 3 had queued both of its remaining sends to it before it failed.)
    long failedAt = first.get(1).endNanos();
    for (TaskRecord t : first) {
      if (t.rank() != 1) {
        assertTrue(t.failure() == null || !t.failure().contains("timed out"),
            "rank " + t.rank() + " must not wait for the communicator timeout: " + t);
        double lag = (t.endNanos() - failedAt) / 1e9;
        assertTrue(lag < FAST_SECONDS, "rank " + t.rank() + " ended " + lag + " s after rank 1");
      }
    }
    assertRootCauseReported(assertAttemptEndedFast(first.get(0).stageId(), 0));
    assertTrue(seconds < 2 * FAST_SECONDS, "failure + retry took " + seconds + " s");
  }

  @Test
  void rankFailingBeforeTheRendezvousEndsTheAttemptFastAndTheStageRetrySucceeds() {
    String r = run;
    JavaRDD<Integer> input = shards().mapPartitionsWithIndex((i, it) -> {
      // Runs when the barrier task computes its input, before the runner's rendezvous.
      if (i == 1 && TaskContext.get().stageAttemptNumber() == 0) {
        Thread.sleep(500); // the peers are now waiting in the rendezvous' allGather
        throw new IllegalStateException("injected failure of partition 1 before the rendezvous");
      }
      return it;
    }, true);
    long t0 = System.nanoTime();
    List<String> result = viaShuffle(
        BarrierRunner.run(input, ring(r, -1, -1), ctx.config(), String.class));
    double seconds = (System.nanoTime() - t0) / 1e9;

    assertEquals(expectedRing(P), result);
    List<TaskRecord> recs = new ArrayList<>(RECORDS.get(run));
    assertEquals(List.of(), attempt(recs, 0), "no task of attempt 0 got past the rendezvous");
    assertEquals(P, attempt(recs, 1).size(), recs.toString());
    assertAttemptEndedFast(attempt(recs, 1).get(0).stageId(), 0);
    // spark.barrier.sync.timeout is 20 s in TestSpark; the kill must be much faster than that.
    assertTrue(seconds < 2 * FAST_SECONDS, "failure + retry took " + seconds + " s");
  }

  @Test
  void failureInABarrierResultStageFailsTheJobFastWithTheTasksError() {
    long t0 = System.nanoTime();
    SparkException e = assertThrows(SparkException.class,
        () -> BarrierRunner.run(shards(), ring(run, 1, 2), ctx.config(), String.class)
            .collect());
    double seconds = (System.nanoTime() - t0) / 1e9;
    assertTrue(e.getMessage().contains("Could not recover from a failed barrier ResultStage"),
        e.getMessage());
    assertTrue(e.getMessage().contains("injected failure of rank 1 at step 2"), e.getMessage());
    assertTrue(seconds < FAST_SECONDS, "job failed after " + seconds + " s");
    // The job fails as soon as rank 1 does; its killed peers must still end promptly, not at the
    // communicator timeout (they would hold their task slots until then).
    List<TaskRecord> recs = awaitRecords(P);
    assertEquals(P, attempt(recs, 0).size(), recs.toString());
    assertRootCauseReported(assertAttemptEndedFast(recs.get(0).stageId(), 0));
    // No retry happened, and the slots are free again: the next job runs at once and is right.
    assertEquals(List.of(), attempt(new ArrayList<>(RECORDS.get(run)), 1));
    RECORDS.get(run).clear();
    List<String> again = BarrierRunner.run(shards(), ring(run, -1, -1), ctx.config(),
        String.class).collect();
    assertEquals(expectedRing(P), again);
  }

  private static List<TaskRecord> attempt(List<TaskRecord> recs, int stageAttempt) {
    return recs.stream().filter(t -> t.stageAttempt() == stageAttempt)
        .sorted((a, b) -> Integer.compare(a.rank(), b.rank())).collect(Collectors.toList());
  }

  private List<TaskRecord> awaitRecords(int n) {
    long deadline = System.nanoTime() + (long) (FAST_SECONDS * 1e9);
    while (RECORDS.get(run).size() < n && System.nanoTime() < deadline) {
      sleep(20);
    }
    return new ArrayList<>(RECORDS.get(run));
  }

  /**
   * All {@code P} tasks of the stage attempt ended (as the scheduler saw it, so including the
   * runner's communicator close) within {@link #FAST_SECONDS} of the first one ending.
   */
  private List<TaskEnd> assertAttemptEndedFast(int stageId, int stageAttempt) {
    long deadline = System.nanoTime() + (long) (2 * FAST_SECONDS * 1e9);
    List<TaskEnd> ends;
    do {
      ends = taskEnds.stream()
          .filter(t -> t.stageId() == stageId && t.stageAttempt() == stageAttempt)
          .collect(Collectors.toList());
      if (ends.size() >= P) {
        break;
      }
      sleep(20);
    } while (System.nanoTime() < deadline);
    assertEquals(P, ends.size(), "task ends of stage " + stageId + "." + stageAttempt + ": " + ends);
    long firstEnd = ends.stream().mapToLong(TaskEnd::finishMs).min().getAsLong();
    long lastEnd = ends.stream().mapToLong(TaskEnd::finishMs).max().getAsLong();
    assertTrue(lastEnd - firstEnd < FAST_SECONDS * 1000,
        "the attempt's tasks ended " + (lastEnd - firstEnd) + " ms apart: " + ends);
    System.out.printf("stage %d.%d: tasks ended within %d ms of each other: %s%n", stageId,
        stageAttempt, lastEnd - firstEnd, ends);
    ends.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
    return ends;
  }

  /**
   * Spark heard of rank 1's own failure first: the peers that failed only because its sockets
   * closed were killed before they could report, so the stage's failure names the root cause.
   */
  private static void assertRootCauseReported(List<TaskEnd> ends) {
    assertTrue(ends.get(1).reason().startsWith("ExceptionFailure")
        && ends.get(1).reason().contains("injected failure of rank 1"), ends.get(1).reason());
    for (int r : new int[] {2, 3}) {
      assertTrue(ends.get(r).reason().startsWith("TaskKilled"),
          "rank " + r + " should be killed, not report its secondary error: " + ends.get(r));
    }
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
