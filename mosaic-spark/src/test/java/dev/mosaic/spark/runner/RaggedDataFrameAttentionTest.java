package dev.mosaic.spark.runner;

import static dev.mosaic.spark.runner.DataFrameAttentionTest.TABLE_ROW;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.VECTOR;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.check;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.rows;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.schema;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.test.TestSeed;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Sequences of different lengths through {@link DataFrameAttention}: packed into ordinary tasks,
 * sharded over barrier stages, or both in one call; every sequence equals the local layer on that
 * sequence alone (relative error below 1e-5: fp32 sums of at most a few hundred terms, whose
 * rounding is ~1e-7 per step, a hundred times under the bound).
 */
@Timeout(600) // a bound for a loaded machine, not an expectation: ~10 s each on an idle one
class RaggedDataFrameAttentionTest {
  private final Random rnd = TestSeed.random();

  @BeforeAll
  @Timeout(180)
  static void startSpark() {
    TestSpark.get();
  }

  @Test
  void raggedSequencesThatFitATaskArePackedAndEqualTheLocalLayer() {
    int e = 16;
    int heads = 2;
    Map<Object, Tensor> seqs = sequences(new int[] {1, 2, 7, 33, 64, 5, 120, 19}, e);
    List<Row> input = rows(seqs, false);
    Collections.shuffle(input, rnd);
    AttentionWeights w = weights(e);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, 0, true, Long.MAX_VALUE, w,
        "ring");
    DataFrameAttention.Prepared run = DataFrameAttention.prepare(
        MosaicContext.init(TestSpark.get(), 2), frame(input, false), "key", "pos", "emb", spec,
        "y");
    RaggedPlan plan = run.plan();
    assertTrue(plan.stages().isEmpty(), plan.describe());
    assertEquals(4, plan.tasks().size(), "local[4]: one ordinary task per slot");
    assertEquals(2, run.output().limit(2).collectAsList().size());
    check(seqs, run.output().collectAsList(), heads, true, Long.MAX_VALUE, w);
  }

  @Test
  void longSequencesAreShardedAndShortOnesPackedInOneCall() {
    int e = 16;
    int heads = 2;
    Map<Object, Tensor> seqs = sequences(new int[] {1, 5, 17, 40, 90, 200, 190, 260}, e);
    AttentionWeights w = weights(e);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, 0, true, 150, w, "ring");
    long memory = RaggedPlanner.wholeMemory(100, new RaggedPlanner.Settings(heads, e / heads, 1,
        true, 150, 1L << 30, 3, 4, "ring"));
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 3)
        .with(MosaicConfig.TASK_MEMORY, Long.toString(memory));
    DataFrameAttention.Prepared run = DataFrameAttention.prepare(ctx, frame(rows(seqs, false),
        false), "key", "pos", "emb", spec, "y");
    RaggedPlan plan = run.plan();
    for (int i = 0; i < plan.lengths().length; i++) {
      boolean isLong = plan.lengths()[i] > 100;
      assertEquals(isLong, plan.stageOf()[i] >= 0, "sequence of " + plan.lengths()[i] + ": "
          + plan.describe());
    }
    assertTrue(plan.stages().stream().allMatch(s -> s.tasks() >= 2 && s.tasks() <= 3),
        plan.describe());
    assertEquals(2, run.output().limit(2).collectAsList().size());
    check(seqs, run.output().collectAsList(), heads, true, 150, w);
  }

  @Test
  void raggedTableRowsWithFeaturesAsBatchShardedByThePlannersStrategy() {
    int e = 8;
    int f = 3;
    int heads = 4;
    Map<Object, Tensor> seqs = new LinkedHashMap<>();
    for (int n : new int[] {1, 4, 9, 30}) {
      seqs.put((long) n * 1000 + rnd.nextInt(1000), Tensor.randn(rnd, 1f, n, f, e));
    }
    AttentionWeights w = weights(e);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, -3, false, Long.MAX_VALUE, w,
        "auto");
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2)
        .with(MosaicConfig.TASK_MEMORY, "1");
    DataFrameAttention.Prepared run = DataFrameAttention.prepare(ctx, frame(rows(seqs, true),
        true), "key", "pos", "emb", spec, "y");
    RaggedPlan plan = run.plan();
    assertEquals(1, plan.packedCount(), "one position cannot be cut: " + plan.describe());
    assertEquals(3, plan.stages().stream().mapToInt(s -> s.sequences().length).sum());
    check(seqs, run.output().collectAsList(), heads, false, Long.MAX_VALUE, w);
  }

  private Map<Object, Tensor> sequences(int[] lengths, int e) {
    Map<Object, Tensor> seqs = new LinkedHashMap<>();
    for (int i = 0; i < lengths.length; i++) {
      seqs.put("s" + i + "-" + Integer.toString(rnd.nextInt(1 << 16), 36),
          Tensor.randn(rnd, 1f, lengths[i], e));
    }
    return seqs;
  }

  private static Dataset<Row> frame(List<Row> rows, boolean nested) {
    boolean longKeys = !rows.isEmpty() && rows.get(0).get(0) instanceof Long;
    return TestSpark.get().createDataFrame(rows, schema(
        longKeys ? DataTypes.LongType : DataTypes.StringType,
        longKeys ? DataTypes.LongType : DataTypes.IntegerType, nested ? TABLE_ROW : VECTOR));
  }

  private AttentionWeights weights(int e) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e), Tensor.randn(rnd, 0.1f, 3 * e),
        Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
  }
}
