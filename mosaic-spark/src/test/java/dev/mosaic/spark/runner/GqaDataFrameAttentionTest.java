package dev.mosaic.spark.runner;

import static dev.mosaic.spark.runner.DataFrameAttentionTest.TABLE_ROW;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.VECTOR;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.check;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.rows;
import static dev.mosaic.spark.runner.DataFrameAttentionTest.schema;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.SeparateProjections;
import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.test.TestSeed;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Arrays;
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
 * Grouped-query attention through {@link DataFrameAttention}: the PyTorch GQA layer fixtures
 * ({@code tools/fixtures/gqa_fixtures.py}, Hugging Face-style q/k/v/o_proj loaded by
 * {@link SeparateProjections}) inside ragged tables, once sharded over a barrier stage (ring) and
 * once packed into an ordinary task, beside random sequences of other lengths that go the other
 * way. The fixture's sequences must equal PyTorch's y and every sequence the (PyTorch-checked)
 * layer on that sequence alone, within 1e-5 relative (the fp32 error model of
 * {@link PackedLayerGqaTest}: ~2e-7 seen, ≤ 7e-6 worst case).
 */
@Timeout(600) // a bound for a loaded machine, not an expectation: ~10 s each on an idle one
class GqaDataFrameAttentionTest {
  private static final double TOL = 1e-5;
  private final Random rnd = TestSeed.random();

  @BeforeAll
  @Timeout(180)
  static void startSpark() {
    TestSpark.get();
  }

  /** H=6, G=2 with biases: the fixture's two sequences of 13 run sharded over ring tasks. */
  @Test
  void fixtureSequencesShardedOverARingStageEqualPyTorch() {
    Map<String, Tensor> t = Safetensors.read(fixture("h6_g2_bias"));
    Tensor x = t.get("x"); // (2, 13, 24) attended along axis 1: two sequences of 13
    int e = 24;
    int heads = 6;
    AttentionWeights w = SeparateProjections.read(t, "", e, heads, 2);
    Map<Object, Tensor> seqs = new LinkedHashMap<>();
    Map<Object, Tensor> pytorch = new LinkedHashMap<>();
    for (int b = 0; b < 2; b++) {
      seqs.put("fixture-" + b, slice(x, b));
      pytorch.put("fixture-" + b, slice(t.get("y"), b));
    }
    for (int n : new int[] {1, 4, 9, 40}) {
      seqs.put("random-" + n, Tensor.randn(rnd, 1f, n, e));
    }
    ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, 0, false, Long.MAX_VALUE, w,
        Backends.RING);
    assertEquals(2, spec.numKvHeads());
    // Up to 10 positions fit a task: 1, 4 and 9 are packed, 13, 13 and 40 sharded.
    long memory = RaggedPlanner.wholeMemory(10, new RaggedPlanner.Settings(heads, e / heads, 1,
        false, Long.MAX_VALUE, 1L << 30, 3, 4, Backends.RING, 2));
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 3)
        .with(MosaicConfig.TASK_MEMORY, Long.toString(memory));
    DataFrameAttention.Prepared run = DataFrameAttention.prepare(ctx,
        frame(rows(seqs, false), false), "key", "pos", "emb", spec, "y");
    RaggedPlan plan = run.plan();
    assertEquals(3, plan.packedCount(), plan.describe());
    assertTrue(plan.stages().stream().allMatch(s -> s.strategy().backend().equals(Backends.RING)
        && s.tasks() >= 2), plan.describe());
    assertTrue(plan.describe().contains("6 heads (2 K/V) x 4"), plan.describe());
    List<Row> out = run.output().collectAsList();
    check(seqs, out, heads, false, Long.MAX_VALUE, w);
    checkPyTorch(pytorch, out);
  }

  /** MQA (H=4, G=1), causal, table rows of 3 features: the fixture runs packed, long ones auto. */
  @Test
  void mqaFixturePackedBesideLongSequencesShardedByThePlannersChoiceEqualsPyTorch() {
    Map<String, Tensor> t = Safetensors.read(fixture("mqa_h4_g1_causal"));
    Tensor x = t.get("x"); // (11, 3, 20) attended along axis 0: one sequence of 11 positions
    int e = 20;
    int heads = 4;
    AttentionWeights w = SeparateProjections.read(t, "", e, heads, 1);
    Map<Object, Tensor> seqs = new LinkedHashMap<>();
    seqs.put(7L, x);
    for (long n : new long[] {2, 30, 45}) {
      seqs.put(n * 100, Tensor.randn(rnd, 1f, (int) n, 3, e));
    }
    ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, -3, true, Long.MAX_VALUE, w,
        Backends.AUTO);
    long memory = RaggedPlanner.wholeMemory(12, new RaggedPlanner.Settings(heads, e / heads, 3,
        true, Long.MAX_VALUE, 1L << 30, 2, 4, Backends.AUTO, 1));
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2)
        .with(MosaicConfig.TASK_MEMORY, Long.toString(memory));
    DataFrameAttention.Prepared run = DataFrameAttention.prepare(ctx,
        frame(rows(seqs, true), true), "key", "pos", "emb", spec, "y");
    RaggedPlan plan = run.plan();
    assertEquals(2, plan.packedCount(), plan.describe());
    assertEquals(2, plan.stages().stream().mapToInt(st -> st.sequences().length).sum(),
        plan.describe());
    assertTrue(plan.stages().stream().map(st -> st.strategy().backend()).allMatch(
        b -> b.equals(Backends.RING) || b.equals(Backends.ULYSSES)), plan.describe());
    List<Row> out = run.output().collectAsList();
    check(seqs, out, heads, true, Long.MAX_VALUE, w);
    checkPyTorch(Map.of(7L, t.get("y")), out);
  }

  @Test
  void keyValueHeadsThatDoNotFitAreOneLineErrors() {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    Dataset<Row> df = frame(rows(Map.of("a", Tensor.randn(rnd, 1f, 3, 24)), false), false);
    // 24 + 2·8 rows of k/v: K/V features 8, not a multiple of d = 24/4 = 6.
    AttentionWeights odd = AttentionWeights.random(24, 8, 3);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> DataFrameAttention.run(ctx, df, "key", "pos", "emb",
            new ShardedAttention.Spec(4, 0, false, Long.MAX_VALUE, odd, Backends.RING), "y"));
    assertEquals("weight 'in_proj_weight' has shape [40, 24], expected [24 + 2·G·6, 24] for"
        + " numHeads 4 of 6 features and G K/V heads dividing 4 (G = 4: [72, 24])",
        e.getMessage());
  }

  /** The output rows of each key in {@code expected}, against PyTorch's y for that sequence. */
  private static void checkPyTorch(Map<Object, Tensor> expected, List<Row> out) {
    for (Map.Entry<Object, Tensor> s : expected.entrySet()) {
      Tensor y = s.getValue();
      int rowSize = y.size() / y.dim(0);
      float[] actual = new float[y.size()];
      for (Row r : out) {
        if (!r.get(0).equals(s.getKey())) {
          continue;
        }
        int p = ((Number) r.get(1)).intValue();
        float[] flat = flatten(r.getList(2));
        System.arraycopy(flat, 0, actual, p * rowSize, rowSize);
      }
      double err = RelativeError.of(Tensor.of(actual, y.shape()), y);
      System.out.printf("key %s vs PyTorch: relative error %.2e%n", s.getKey(), err);
      assertTrue(err < TOL, "key " + s.getKey() + " vs PyTorch: relative error " + err);
    }
  }

  private static float[] flatten(List<Object> emb) {
    if (emb.isEmpty() || emb.get(0) instanceof Float) {
      float[] f = new float[emb.size()];
      for (int i = 0; i < f.length; i++) {
        f[i] = (Float) emb.get(i);
      }
      return f;
    }
    float[][] parts = new float[emb.size()][];
    int total = 0;
    for (int j = 0; j < parts.length; j++) {
      scala.collection.Seq<?> inner = (scala.collection.Seq<?>) emb.get(j);
      parts[j] = new float[inner.size()];
      for (int i = 0; i < parts[j].length; i++) {
        parts[j][i] = (Float) inner.apply(i);
      }
      total += parts[j].length;
    }
    float[] f = new float[total];
    int at = 0;
    for (float[] p : parts) {
      System.arraycopy(p, 0, f, at, p.length);
      at += p.length;
    }
    return f;
  }

  /** Batch element {@code b} of a (B, n, E) tensor, as (n, E). */
  private static Tensor slice(Tensor t, int b) {
    int size = t.dim(1) * t.dim(2);
    return Tensor.of(Arrays.copyOfRange(t.data(), b * size, (b + 1) * size), t.dim(1), t.dim(2));
  }

  private static Dataset<Row> frame(List<Row> rows, boolean nested) {
    boolean longKeys = rows.get(0).get(0) instanceof Long;
    return TestSpark.get().createDataFrame(rows, schema(
        longKeys ? DataTypes.LongType : DataTypes.StringType,
        longKeys ? DataTypes.LongType : DataTypes.IntegerType, nested ? TABLE_ROW : VECTOR));
  }

  private static Path fixture(String name) {
    try {
      return Path.of(GqaDataFrameAttentionTest.class.getResource("/fixtures/gqa/layer_" + name
          + ".safetensors").toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + name + " is not on the test classpath", e);
    }
  }
}
