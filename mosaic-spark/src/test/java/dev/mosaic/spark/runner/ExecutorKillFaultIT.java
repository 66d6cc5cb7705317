package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.faults.FaultCluster;
import dev.mosaic.spark.faults.FaultPlan;
import dev.mosaic.spark.jobs.ParquetOutput;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.model.TabularConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * SIGKILL of an executor JVM while its barrier task is inside the ring: the work is redone and
 * the output is exact. Two executor JVMs ({@code local-cluster[2,1,1024]}); rank 1's JVM stops
 * itself (SIGSTOP) as soon as its task's stack shows the ring (see {@link dev.mosaic.spark.faults
 * .FaultPlugin}), and the test then kills it with SIGKILL, so the kill lands mid-ring every time.
 * The worker starts a replacement executor, and
 * <ul>
 *   <li>{@link ShardedAttention} (a barrier result stage, which Spark does not retry) is run again
 *       by the driver ({@code spark.mosaic.job.maxAttempts});
 *   <li>{@link DataFrameAttention} and {@link TabularJob} (barrier shuffle map stages) are retried
 *       by Spark's stage retry, the lost shuffle output of their input stage recomputed; the
 *       tabular predictions, written as Parquet while this happens, are complete.
 * </ul>
 */
@Timeout(300)
class ExecutorKillFaultIT {
  private static final int SP = 2;
  private static FaultCluster cluster;
  private final Random rnd = new Random(20240611);

  @BeforeAll
  static void startCluster() throws Exception {
    ItSparkHome.prepare();
    cluster = FaultCluster.start("mosaic-executor-kill-fault-it", SP,
        Path.of("target", "fault-it", "kill").toAbsolutePath(), Map.of());
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) {
      cluster.close();
    }
  }

  @BeforeEach
  void everyExecutorUp() {
    cluster.awaitExecutors(120_000); // a replacement from the previous test may still start
  }

  @Test
  @Timeout(180)
  void shardedAttentionIsRunAgainAndExactAfterAnExecutorIsKilledMidRing() throws Exception {
    int e = 32;
    Tensor x = Tensor.randn(rnd, 1f, 2, 384, e);
    AttentionWeights w = weights(e);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(4, 1, true, Long.MAX_VALUE, w, "ring");
    Tensor expected = local(x, spec);

    String id = cluster.plan().install(Map.of(1, FaultPlan.Action.STOP_IN_RING));
    CompletableFuture<ProcessHandle> killed = killWhenStopped(id);
    Tensor actual = ShardedAttention.run(MosaicContext.init(cluster.spark(), SP), x, spec);

    killed.get(10, TimeUnit.SECONDS);
    double rel = RelativeError.of(actual, expected);
    assertTrue(rel < 1e-5, "relative error " + rel);
  }

  @Test
  @Timeout(180)
  void dataFrameAttentionStageIsRetriedAndExactAfterAnExecutorIsKilledMidRing() throws Exception {
    int n = 300;
    int e = 32;
    int keys = 3;
    AttentionWeights w = weights(e);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(4, 0, false, Long.MAX_VALUE, w, "ring");
    List<Row> rows = new ArrayList<>();
    List<Tensor> seqs = new ArrayList<>();
    for (int k = 0; k < keys; k++) {
      Tensor s = Tensor.randn(rnd, 1f, n, e);
      seqs.add(s);
      for (int pos = 0; pos < n; pos++) {
        float[] v = new float[e];
        System.arraycopy(s.data(), pos * e, v, 0, e);
        rows.add(RowFactory.create(k, pos, v));
      }
    }
    Dataset<Row> df = cluster.spark().createDataFrame(rows, new StructType()
        .add("key", DataTypes.IntegerType, false)
        .add("pos", DataTypes.IntegerType, false)
        .add("emb", DataTypes.createArrayType(DataTypes.FloatType, false), false));

    String id = cluster.plan().install(Map.of(1, FaultPlan.Action.STOP_IN_RING));
    CompletableFuture<ProcessHandle> killed = killWhenStopped(id);
    // A task memory nothing fits: every sequence is sharded over the SP barrier tasks (mid-ring).
    List<Row> out = DataFrameAttention.run(MosaicContext.init(cluster.spark(), SP)
        .with(MosaicConfig.TASK_MEMORY, "1"), df, "key",
        "pos", "emb", spec, "y").collectAsList();

    killed.get(10, TimeUnit.SECONDS);
    assertEquals(keys * n, out.size());
    for (int k = 0; k < keys; k++) {
      Tensor actual = Tensor.zeros(n, e);
      for (Row r : out) {
        if (r.getInt(0) == k) {
          List<Float> y = r.getList(2);
          for (int i = 0; i < e; i++) {
            actual.data()[r.getInt(1) * e + i] = y.get(i);
          }
        }
      }
      double rel = RelativeError.of(actual, local(seqs.get(k), spec));
      assertTrue(rel < 1e-5, "key " + k + ": relative error " + rel);
    }
  }

  @Test
  @Timeout(180)
  void tabularJobStageIsRetriedAndItsParquetOutputCompleteAfterAnExecutorIsKilledMidRing()
      throws Exception {
    int rows = 600;
    int features = 8;
    int classes = 3;
    long nTrain = 480;
    long seed = 11;
    TabularConfig cfg = TabularConfig.defaults(features, classes);
    TabularExpectation expected = TabularExpectation.of(rows, features, classes, nTrain, seed,
        cfg);
    Path out = Path.of("target", "fault-it", "kill", "tabular.parquet").toAbsolutePath();

    String id = cluster.plan().install(Map.of(1, FaultPlan.Action.STOP_IN_RING));
    CompletableFuture<ProcessHandle> killed = killWhenStopped(id);
    Dataset<Row> table = TabularJob.synthetic(cluster.spark(), rows, features, classes, seed, SP);
    ParquetOutput.write(TabularJob.predict(MosaicContext.init(cluster.spark(), SP), table, rows,
        nTrain, cfg, null), out.toString());

    killed.get(10, TimeUnit.SECONDS);
    expected.check(cluster.spark().read().parquet(out.toString()).collectAsList());
  }

  /**
   * Kills (SIGKILL) the executor JVM of plan {@code id} once it has stopped itself mid-ring;
   * completes when it is gone.
   */
  private static CompletableFuture<ProcessHandle> killWhenStopped(String id) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        ProcessHandle p = FaultCluster.process(cluster.plan().awaitMarker(id, "pid", 120_000));
        FaultCluster.awaitStopped(p, 30_000);
        FaultCluster.kill(p);
        return p;
      } catch (java.io.IOException ex) {
        throw new java.io.UncheckedIOException(ex);
      }
    });
  }

  private static Tensor local(Tensor x, ShardedAttention.Spec spec) {
    int e = x.dim(-1);
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, spec.numHeads(), spec.axis())
        .weights(spec.weights()).causal(spec.causal()).threads(1).build()) {
      return layer.forward(x, spec.keyLimit());
    }
  }

  private AttentionWeights weights(int e) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e), Tensor.randn(rnd, 0.1f, 3 * e),
        Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
  }
}
