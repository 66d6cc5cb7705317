package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A task failure that a retry would repeat (bad input) fails the job at once with the task's
 * message: Spark does not re-run the barrier stage, nor the driver the job. Attempts are counted,
 * not timed. ({@link BarrierFailureTest} shows that transient failures are still retried.)
 */
@Timeout(60)
class NonRetryableFailureTest {
  private static final int P = 4;
  private static final String BAD_INPUT = "shard 1 holds 0 rows, expected at least 1";

  /** "stage attempt.rank" of every run of the shard function, by test run. */
  static final Map<String, ConcurrentLinkedQueue<String>> RUNS = new ConcurrentHashMap<>();

  private final AtomicInteger jobs = new AtomicInteger();
  private final Set<String> markers = ConcurrentHashMap.newKeySet();
  private final ConcurrentLinkedQueue<String> stageAttempts = new ConcurrentLinkedQueue<>();
  private final SparkListener listener = new SparkListener() {
    @Override
    public void onJobStart(SparkListenerJobStart start) {
      jobs.incrementAndGet();
      String description = start.properties() == null ? null
          : start.properties().getProperty("spark.job.description");
      if (description != null) {
        markers.add(description);
      }
    }

    @Override
    public void onStageSubmitted(SparkListenerStageSubmitted s) {
      stageAttempts.add(s.stageInfo().stageId() + "." + s.stageInfo().attemptNumber());
    }
  };
  private MosaicContext ctx;
  private String run;

  @BeforeEach
  void setUp() {
    ctx = MosaicContext.init(TestSpark.get(), P).with(MosaicConfig.COMM_TIMEOUT, "60s");
    ctx.spark().sparkContext().addSparkListener(listener);
    run = UUID.randomUUID().toString();
    RUNS.put(run, new ConcurrentLinkedQueue<>());
  }

  @AfterEach
  void tearDown() {
    ctx.spark().sparkContext().removeSparkListener(listener);
    RUNS.remove(run);
  }

  /**
   * Rank 1 rejects its input on every attempt; the others wait for it in a ring step (and fail
   * when its sockets close, or are killed).
   */
  static ShardFunction<Integer, Integer> rejectsInputAtRank1(String run) {
    return (env, records) -> {
      ConcurrentLinkedQueue<String> q = RUNS.get(run);
      if (q != null) {
        q.add(TaskContext.get().stageAttemptNumber() + "." + env.rank());
      }
      if (env.rank() == 1) {
        throw new IllegalArgumentException(BAD_INPUT);
      }
      Communicator comm = env.comm();
      int r = env.rank();
      float[] recv = new float[1];
      comm.sendRecv(new float[] {r}, 0, 1, (r + 1) % P, recv, 0, 1, (r - 1 + P) % P).await();
      return List.of(r).iterator();
    };
  }

  private JavaRDD<Integer> shards() {
    return ctx.jsc().parallelize(List.of(0, 1, 2, 3), P);
  }

  @Test
  void badInputInAStageThatFeedsAShuffleFailsTheJobInOneAttempt() {
    JavaRDD<Integer> out = BarrierRunner.run(shards(), rejectsInputAtRank1(run), ctx.config(),
        "cpu", Integer.class);
    SparkException e = assertThrows(SparkException.class, () -> out.repartition(1).collect());
    String first = e.getMessage().lines().findFirst().orElse("");
    System.out.println("stage attempts submitted " + stageAttempts + "; job failure: " + first);
    assertTrue(first.contains("cancelled because " + FailFastListener.reason(1, BAD_INPUT)),
        first);
    // The shard function ran in the first attempt only (in every task that got past connecting):
    // a stage retry that the scheduler started before the cancel computed nothing.
    List<String> ran = new ArrayList<>(RUNS.get(run));
    assertTrue(ran.contains("0.1") && ran.stream().allMatch(a -> a.startsWith("0.")),
        "stage attempt.rank of every run of the shard function: " + ran);
  }

  @Test
  void aStageRetryThatStartsBeforeTheCancelComputesNothing() {
    // Hold every listener of the shared queue, FailFastListener among them, until Spark has
    // resubmitted the failed stage: the race the cancel usually wins, lost on purpose.
    SparkListener holdUntilRetry = new SparkListener() {
      @Override
      public void onStageSubmitted(SparkListenerStageSubmitted s) {
        boolean barrier = s.stageInfo().rddInfos().exists(
            r -> r.name() != null && r.name().startsWith("Mosaic barrier stage"));
        if (barrier && s.stageInfo().attemptNumber() == 0) {
          awaitAttempt(s.stageInfo().stageId(), 1);
        }
      }
    };
    ctx.spark().sparkContext().addSparkListener(holdUntilRetry);
    try {
      JavaRDD<Integer> out = BarrierRunner.run(shards(), rejectsInputAtRank1(run), ctx.config(),
          "cpu", Integer.class);
      SparkException e = assertThrows(SparkException.class, () -> out.repartition(1).collect());
      String first = e.getMessage().lines().findFirst().orElse("");
      System.out.println("stage attempts submitted " + stageAttempts + "; job failure: " + first);
      assertTrue(stageAttempts.stream().anyMatch(a -> a.endsWith(".1")),
          "Spark retried the stage: " + stageAttempts);
      assertTrue(first.contains("cancelled because " + FailFastListener.reason(1, BAD_INPUT)),
          first);
      List<String> ran = new ArrayList<>(RUNS.get(run));
      assertTrue(ran.contains("0.1") && ran.stream().allMatch(a -> a.startsWith("0.")),
          "stage attempt.rank of every run of the shard function: " + ran);
    } finally {
      ctx.spark().sparkContext().removeSparkListener(holdUntilRetry);
    }
  }

  /** Waits (at most 30 s) until Spark's status store shows attempt {@code attempt} of a stage. */
  private void awaitAttempt(int stageId, int attempt) {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (System.nanoTime() < deadline) {
      var info = ctx.spark().sparkContext().statusTracker().getStageInfo(stageId);
      if (info.isDefined() && info.get().currentAttemptId() >= attempt) {
        return;
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  @Test
  void badInputInACollectedStageIsThrownAsTheTasksOwnError() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> BarrierRunner.collect(shards(), rejectsInputAtRank1(run), ctx.config(), "cpu",
            Integer.class));
    assertEquals(BAD_INPUT, e.getMessage());
    assertTrue(e.getCause() instanceof SparkException, "Spark's failure stays the cause");
    List<String> ran = new ArrayList<>(RUNS.get(run));
    assertTrue(ran.contains("0.1") && ran.stream().allMatch(a -> a.startsWith("0.")),
        "stage attempt.rank of every run of the shard function: " + ran);
  }

  @Test
  void aTableRowWithTheWrongFeatureCountFailsTheTabularJobAtOnce() {
    List<Row> rows = new ArrayList<>();
    for (long id = 0; id < 40; id++) {
      rows.add(RowFactory.create(id, id == 13 ? new float[] {1f, 2f} : new float[] {1f, 2f, 3f},
          (int) (id % 2)));
    }
    Dataset<Row> table = ctx.spark().createDataFrame(rows, TabularJob.INPUT);
    Dataset<Row> predicted = TabularJob.predict(ctx, table, 40, 20,
        TabularConfig.defaults(3, 2), null);
    SparkException e = assertThrows(SparkException.class, predicted::collectAsList);
    String first = e.getMessage().lines().findFirst().orElse("");
    assertTrue(first.contains("cancelled because " + FailFastListener.reason(1,
        "row 13 has 2 features, expected 3")), first);
  }

  @Test
  void shardedAttentionDoesNotRerunAJobThatFailedOnItsInput() {
    Random rnd = TestSeed.random();
    int embed = 16;
    Tensor x = Tensor.randn(rnd, 1f, 2, 40, embed);
    // 16 features do not split into 3 heads: each task's layer rejects it.
    ShardedAttention.Spec spec = new ShardedAttention.Spec(3, 1, false, Long.MAX_VALUE,
        AttentionWeights.random(embed, rnd.nextLong()), "ring");
    int before = jobsSeen();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ShardedAttention.run(ctx.with(MosaicConfig.JOB_ATTEMPTS, "3"), x, spec));
    System.out.println("sharded attention failed with: " + e.getMessage());
    assertTrue(e.getMessage().contains("3"), e.getMessage());
    // jobsSeen() runs one marker job itself.
    assertEquals(1, jobsSeen() - before - 1, "Spark jobs run by ShardedAttention");
  }

  /**
   * The jobs the listener has seen start, once it has seen this call's marker job: listener events
   * arrive in order, so every job started before the marker is counted.
   */
  private int jobsSeen() {
    String marker = "marker " + UUID.randomUUID();
    ctx.jsc().setJobDescription(marker);
    try {
      ctx.jsc().parallelize(List.of(1), 1).count();
    } finally {
      ctx.jsc().setJobDescription(null);
    }
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (!markers.contains(marker) && System.nanoTime() < deadline) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        throw new AssertionError(ie);
      }
    }
    assertTrue(markers.contains(marker), "the listener never saw the marker job");
    return jobs.get();
  }
}
