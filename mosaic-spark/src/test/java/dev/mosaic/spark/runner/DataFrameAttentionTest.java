package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * DataFrame rows → sharded ring attention over real barrier stages equals the local layer (the
 * task memory is set so low that every sequence is sharded); errors for bad input. Ragged input
 * and packing: {@link RaggedDataFrameAttentionTest}.
 */
@Timeout(300) // a bound for a loaded machine (load ~30 here): the first test once took 61 s
class DataFrameAttentionTest {
  static final DataType VECTOR = DataTypes.createArrayType(DataTypes.FloatType, false);
  static final DataType TABLE_ROW = DataTypes.createArrayType(VECTOR, false);
  private final Random rnd = TestSeed.random();

  /** The shared session starts here, under its own bound, so the tests' bounds are their own. */
  @BeforeAll
  @Timeout(180)
  static void startSpark() {
    TestSpark.get();
  }

  static Stream<Arguments> vectorCases() {
    return Stream.of(
        // shards, causal, keyLimit (sp 3 causal without a bound: shuffledRowsGiveTheSameResult)
        Arguments.of(2, false, Long.MAX_VALUE),
        Arguments.of(2, true, 30L),
        Arguments.of(3, false, 20L));
  }

  @ParameterizedTest(name = "sp={0} causal={1} keyLimit={2}")
  @MethodSource("vectorCases")
  void sequencesOfVectorsEqualTheLocalLayerPerKey(int sp, boolean causal, long keyLimit) {
    int n = 53;
    int e = 16;
    int heads = 2;
    Map<Object, Tensor> seqs = new HashMap<>();
    for (String key : distinctKeys(3)) {
      seqs.put(key, Tensor.randn(rnd, 1f, n, e));
    }
    AttentionWeights w = weights(e);
    Dataset<Row> df = TestSpark.get().createDataFrame(rows(seqs, false), schema(
        DataTypes.StringType, DataTypes.IntegerType, VECTOR));
    Dataset<Row> out = DataFrameAttention.run(sharded(sp), df, "key",
        "pos", "emb", new ShardedAttention.Spec(heads, 0, causal, keyLimit, w, "ring"), "y");
    assertEquals(schema(DataTypes.StringType, DataTypes.IntegerType, VECTOR, "y"), out.schema());
    check(seqs, out.collectAsList(), heads, causal, keyLimit, w);
  }

  @Test
  void tableRowsAttendAlongRowsWithFeaturesAsBatch() {
    int n = 41;
    int f = 3;
    int e = 8;
    int heads = 2;
    Map<Object, Tensor> seqs = new HashMap<>();
    seqs.put(rnd.nextLong(), Tensor.randn(rnd, 1f, n, f, e));
    seqs.put(rnd.nextLong(), Tensor.randn(rnd, 1f, n, f, e));
    AttentionWeights w = weights(e);
    Dataset<Row> df = TestSpark.get().createDataFrame(rows(seqs, true), schema(
        DataTypes.LongType, DataTypes.LongType, TABLE_ROW));
    Dataset<Row> out = DataFrameAttention.run(sharded(2), df, "key",
        "pos", "emb", new ShardedAttention.Spec(heads, 0, false, 25, w, "ring"), "y");
    assertEquals(schema(DataTypes.LongType, DataTypes.LongType, TABLE_ROW, "y"), out.schema());
    check(seqs, out.collectAsList(), heads, false, 25, w);
  }

  @Test
  void shuffledRowsGiveTheSameResult() {
    int n = 53;
    int e = 16;
    int heads = 4;
    Map<Object, Tensor> seqs = new HashMap<>();
    for (int i = 0; i < 3; i++) {
      seqs.put(rnd.nextInt(), Tensor.randn(rnd, 1f, n, e));
    }
    List<Row> rows = rows(seqs, false);
    Collections.shuffle(rows, rnd);
    Dataset<Row> df = TestSpark.get().createDataFrame(rows, schema(
        DataTypes.IntegerType, DataTypes.IntegerType, VECTOR));
    AttentionWeights w = weights(e);
    Dataset<Row> out = DataFrameAttention.run(sharded(3), df, "key",
        "pos", "emb", new ShardedAttention.Spec(heads, -2, true, Long.MAX_VALUE, w, "ring"), "y");
    // Actions that compute only some partitions work: a shuffle follows the barrier stage.
    assertEquals(2, out.limit(2).collectAsList().size());
    check(seqs, out.collectAsList(), heads, true, Long.MAX_VALUE, w);
  }

  @Test
  void emptyEmbeddingsAreRefusedNamingKeyAndPosition() {
    List<Row> rows = new ArrayList<>();
    addSequence(rows, "a", 10, 16);
    addSequence(rows, "b", 3, 16);
    rows.set(11, RowFactory.create("b", 1, new float[0]));
    assertEquals("key 'b' position 1: embedding column 'emb' has 0 values, expected embedDim 16"
        + " (from spec.weights())", failure(rows, 16));
    StructType table = schema(DataTypes.StringType, DataTypes.IntegerType, TABLE_ROW);
    List<Row> tableRows = new ArrayList<>();
    for (int p = 0; p < 4; p++) {
      tableRows.add(RowFactory.create("t", p, p == 2 ? new float[0][] : new float[][] {
          vector(8)}));
    }
    assertEquals("key 't' position 2: embedding column 'emb' has no features",
        failure(tableRows, table, 8));
  }

  @Test
  void duplicatePositionIsRefusedNamingKeyAndPosition() {
    List<Row> rows = new ArrayList<>();
    addSequence(rows, "a", 10, 16);
    addSequence(rows, "b", 10, 16);
    rows.add(RowFactory.create("b", 4, vector(16)));
    assertEquals("key 'b' has position 4 in 2 rows; positions must be 0..n-1 without gaps or"
        + " duplicates", failure(rows, 16));
  }

  @Test
  void gapIsRefusedNamingKeyAndMissingPosition() {
    List<Row> rows = new ArrayList<>();
    addSequence(rows, "a", 10, 16);
    addSequence(rows, "b", 11, 16);
    rows.removeIf(r -> r.getString(0).equals("b") && r.getInt(1) == 6);
    assertEquals("key 'b' is missing position 6 (it has 10 rows, positions up to 10); positions"
        + " must be 0..n-1 without gaps or duplicates", failure(rows, 16));
  }

  @Test
  void wrongEmbeddingLengthIsRefusedNamingKeyPositionAndSizes() {
    List<Row> rows = new ArrayList<>();
    addSequence(rows, "a", 10, 16);
    addSequence(rows, "c", 10, 16);
    rows.set(17, RowFactory.create("c", 7, vector(15)));
    assertEquals("key 'c' position 7: embedding column 'emb' has 15 values, expected embedDim 16"
        + " (from spec.weights())", failure(rows, 16));
  }

  @Test
  void nullElementsAreRefusedNamingKeyPositionAndIndex() {
    DataType nullable = DataTypes.createArrayType(DataTypes.FloatType, true);
    List<Row> rows = new ArrayList<>();
    for (int p = 0; p < 5; p++) {
      rows.add(RowFactory.create("a", p, boxed(vector(8), -1)));
    }
    rows.set(2, RowFactory.create("a", 2, boxed(vector(8), 5)));
    assertEquals("key 'a' position 2: embedding column 'emb' has a null at index 5",
        failure(rows, schema(DataTypes.StringType, DataTypes.IntegerType, nullable), 8));
    StructType table = schema(DataTypes.StringType, DataTypes.IntegerType,
        DataTypes.createArrayType(nullable, true));
    List<Row> tableRows = new ArrayList<>();
    for (int p = 0; p < 4; p++) {
      tableRows.add(RowFactory.create("t", p, new Float[][] {boxed(vector(8), -1),
          boxed(vector(8), p == 3 ? 0 : -1)}));
    }
    assertEquals("key 't' position 3: embedding column 'emb' feature 1 has a null at index 0",
        failure(tableRows, table, 8));
    tableRows.set(1, RowFactory.create("t", 1, new Float[][] {boxed(vector(8), -1), null}));
    assertEquals("key 't' position 1: embedding column 'emb' feature 1 is null",
        failure(tableRows, table, 8));
  }

  /** The values boxed, with a null at {@code nullAt} (none when negative). */
  private static Float[] boxed(float[] v, int nullAt) {
    Float[] out = new Float[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = i == nullAt ? null : v[i];
    }
    return out;
  }

  @Test
  void badTableRowsAreRefusedNamingKeyPositionAndFeature() {
    StructType schema = schema(DataTypes.StringType, DataTypes.IntegerType, TABLE_ROW);
    List<Row> rows = new ArrayList<>();
    for (int p = 0; p < 6; p++) {
      rows.add(RowFactory.create("a", p, new float[][] {vector(8), vector(8)}));
    }
    rows.set(3, RowFactory.create("a", 3, new float[][] {vector(8), vector(7)}));
    assertEquals("key 'a' position 3: embedding column 'emb' feature 1 has 7 values, expected"
        + " embedDim 8 (from spec.weights())", failure(rows, schema, 8));
    rows.set(3, RowFactory.create("a", 3, new float[][] {vector(8), vector(8)}));
    rows.set(4, RowFactory.create("a", 4, new float[][] {vector(8), vector(8), vector(8)}));
    assertEquals("key 'a' position 4: embedding column 'emb' has 3 features, expected 2 like key"
        + " 'a' position 0 (every row must have the same number of features)",
        failure(rows, schema, 8));
  }

  @Test
  void specMustNameThePositionAxisAndTheRingBackend() {
    List<Row> rows = new ArrayList<>();
    addSequence(rows, "a", 4, 8);
    Dataset<Row> df = TestSpark.get().createDataFrame(rows,
        schema(DataTypes.StringType, DataTypes.IntegerType, VECTOR));
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    AttentionWeights w = weights(8);
    assertEquals("spec.axis must be the position axis 0 (or -2) of each sequence's (positions,"
        + " embed) tensor, got 1", assertThrows(IllegalArgumentException.class,
            () -> DataFrameAttention.run(ctx, df, "key", "pos", "emb",
                new ShardedAttention.Spec(2, 1, false, Long.MAX_VALUE, w, "ring"), "y"))
        .getMessage());
    assertEquals("DataFrameAttention shards long sequences with backend 'ring' or 'auto' (the"
        + " planner's choice), got spec.backend 'local'", assertThrows(IllegalArgumentException.class,
            () -> DataFrameAttention.run(ctx, df, "key", "pos", "emb",
                new ShardedAttention.Spec(2, 0, false, Long.MAX_VALUE, w, "local"), "y"))
        .getMessage());
  }

  // ---------------------------------------------------------------- helpers

  /** spSize tasks, and a task memory nothing fits: every sequence is sharded over all of them. */
  private static MosaicContext sharded(int sp) {
    return MosaicContext.init(TestSpark.get(), sp).with(MosaicConfig.TASK_MEMORY, "1");
  }

  private String failure(List<Row> rows, int embed) {
    return failure(rows, schema(DataTypes.StringType, DataTypes.IntegerType, VECTOR), embed);
  }

  private String failure(List<Row> rows, StructType schema, int embed) {
    Dataset<Row> df = TestSpark.get().createDataFrame(rows, schema);
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(2, 0, false, Long.MAX_VALUE,
        weights(embed), "ring");
    return assertThrows(IllegalArgumentException.class,
        () -> DataFrameAttention.run(ctx, df, "key", "pos", "emb", spec, "y")).getMessage();
  }

  private void addSequence(List<Row> rows, String key, int n, int embed) {
    for (int p = 0; p < n; p++) {
      rows.add(RowFactory.create(key, p, vector(embed)));
    }
  }

  private float[] vector(int embed) {
    return Tensor.randn(rnd, 1f, embed).data();
  }

  private Set<String> distinctKeys(int count) {
    Set<String> keys = new LinkedHashSet<>();
    while (keys.size() < count) {
      keys.add("seq-" + Integer.toString(rnd.nextInt(1 << 20), 36));
    }
    return keys;
  }

  private AttentionWeights weights(int e) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e), Tensor.randn(rnd, 0.1f, 3 * e),
        Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
  }

  static StructType schema(DataType key, DataType pos, DataType emb) {
    return schema(key, pos, emb, "emb");
  }

  static StructType schema(DataType key, DataType pos, DataType emb, String embName) {
    return new StructType().add("key", key, false).add("pos", pos, false)
        .add(embName, emb, false);
  }

  /** One row per position of every sequence: (key, pos, emb), pos int or long like the key. */
  static List<Row> rows(Map<Object, Tensor> seqs, boolean nested) {
    List<Row> rows = new ArrayList<>();
    for (Map.Entry<Object, Tensor> s : seqs.entrySet()) {
      Tensor x = s.getValue();
      int n = x.dim(0);
      int rowSize = x.size() / n;
      for (int p = 0; p < n; p++) {
        Object pos = s.getKey() instanceof Long ? (Object) (long) p : (Object) p;
        float[] flat = new float[rowSize];
        System.arraycopy(x.data(), p * rowSize, flat, 0, rowSize);
        Object emb = flat;
        if (nested) {
          int f = x.dim(1);
          int e = x.dim(2);
          float[][] m = new float[f][];
          for (int j = 0; j < f; j++) {
            m[j] = new float[e];
            System.arraycopy(flat, j * e, m[j], 0, e);
          }
          emb = m;
        }
        rows.add(RowFactory.create(s.getKey(), pos, emb));
      }
    }
    return rows;
  }

  /**
   * Every input row comes back exactly once, and every sequence's output equals the local layer on
   * that sequence's tensor along axis 0.
   */
  static void check(Map<Object, Tensor> seqs, List<Row> out, int heads, boolean causal,
      long keyLimit, AttentionWeights w) {
    int total = 0;
    for (Tensor x : seqs.values()) {
      total += x.dim(0);
    }
    assertEquals(total, out.size(), "one output row per input row");
    Map<Object, Tensor> actual = new HashMap<>();
    Map<Object, boolean[]> seen = new HashMap<>();
    for (Row r : out) {
      Object key = r.get(0);
      Tensor x = seqs.get(key);
      assertNotNull(x, "unknown key " + key);
      Tensor y = actual.computeIfAbsent(key, k -> Tensor.zeros(x.shape()));
      int p = ((Number) r.get(1)).intValue();
      boolean[] s = seen.computeIfAbsent(key, k -> new boolean[x.dim(0)]);
      assertTrue(!s[p], "key " + key + " position " + p + " came back twice");
      s[p] = true;
      int rowSize = x.size() / x.dim(0);
      List<Object> emb = r.getList(2);
      if (x.rank() == 2) {
        assertEquals(rowSize, emb.size());
        for (int i = 0; i < rowSize; i++) {
          y.data()[p * rowSize + i] = (Float) emb.get(i);
        }
      } else {
        int e = x.dim(2);
        assertEquals(x.dim(1), emb.size());
        for (int j = 0; j < x.dim(1); j++) {
          scala.collection.Seq<?> inner = (scala.collection.Seq<?>) emb.get(j);
          assertEquals(e, inner.size());
          for (int i = 0; i < e; i++) {
            y.data()[p * rowSize + j * e + i] = (Float) inner.apply(i);
          }
        }
      }
    }
    for (Map.Entry<Object, Tensor> s : seqs.entrySet()) {
      Tensor x = s.getValue();
      Tensor expected;
      try (MultiAxisAttention local = MultiAxisAttention.builder(x.dim(-1), heads, 0).weights(w)
          .causal(causal).threads(2).build()) {
        expected = local.forward(x, keyLimit);
      }
      Tensor y = actual.get(s.getKey());
      assertNotNull(y, "key " + s.getKey() + " missing from the output");
      double err = RelativeError.of(y, expected);
      assertTrue(err < 1e-5, "key " + s.getKey() + ": relative error " + err);
    }
  }
}
