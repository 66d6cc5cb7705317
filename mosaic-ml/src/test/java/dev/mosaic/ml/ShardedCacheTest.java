package dev.mosaic.ml;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.test.TestSeed;
import java.io.File;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Scoring above the broadcast limit (forced low: {@code spark.mosaic.cache.broadcastBytes=1k}):
 * the fit leaves its K/V shards in files, transform runs one barrier stage whose test rows'
 * queries visit them. Compared with the broadcast path, the uncached model and PyTorch over real
 * {@code local[3]} barrier stages. The paths differ only in summation order (the ring merges
 * per-shard partials), so 1e-5 has a wide margin.
 */
@Timeout(900) // minutes on a CPU-starved shared machine; seconds when idle
class ShardedCacheTest {
  private static final double TOL = 1e-5;
  private static final StructType INPUT = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false)
      .add("label", DataTypes.DoubleType, true);
  private static SparkSession spark;

  @BeforeAll
  static void start() {
    spark = MlTestSpark.start("mosaic-ml-sharded-tests");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @ParameterizedTest(name = "p = {0}")
  @ValueSource(ints = {2, 3})
  void shardsScoreAsTheBroadcastPathAndTheUncachedModel(int p) {
    Random rnd = TestSeed.random();
    int rows = 70;
    int nTrain = 53; // uneven shards: 26 + 27, or 17 + 18 + 18
    Tensor x = table(rnd, rows, 4);
    float[] y = labels(rnd, nTrain, 3);
    long seed = rnd.nextLong();
    TabularAttentionClassifier clf = seeded(seed).setShards(p);
    TabularAttentionClassificationModel sharded = withLimit("1k",
        () -> clf.fit(rows(x, y, 0, nTrain)));
    assertTrue(sharded.isCacheSharded(), "fit above the limit keeps shards");
    int[] expectedRows = p == 2 ? new int[] {26, 27} : new int[] {17, 18, 18};
    assertArrayEquals(expectedRows, sharded.cacheShards().shardRows());
    TabularAttentionClassificationModel broadcast = clf.fit(rows(x, y, 0, nTrain));
    assertFalse(broadcast.isCacheSharded(), "fit within the limit broadcasts");

    Dataset<Row> test = rows(x, null, nTrain, rows - nTrain).repartition(4);
    float[] viaShards = probabilities(sharded.transform(test));
    float[] viaBroadcast = probabilities(broadcast.transform(test));
    float[] uncached = uncached(seed, x, y);
    assertClose(viaShards, uncached, "shards vs the uncached model");
    assertClose(viaShards, viaBroadcast, "shards vs the broadcast path");
  }

  @Test
  void fewerTestRowsThanTasks() {
    Random rnd = TestSeed.random();
    int nTrain = 31;
    Tensor x = table(rnd, nTrain + 2, 3);
    float[] y = labels(rnd, nTrain, 2);
    long seed = rnd.nextLong();
    TabularAttentionClassificationModel model = withLimit("1k",
        () -> seeded(seed).setShards(3).fit(rows(x, y, 0, nTrain)));
    assertEquals(3, model.cacheShards().parts());
    // 2 test rows over 3 tasks: at least one task scores nothing but serves its shard
    assertClose(probabilities(model.transform(rows(x, null, nTrain, 2))), uncached(seed, x, y),
        "2 test rows vs the uncached model");
  }

  @Test
  void saveLoadTransformReadsTheSavedShardsAndEqualsPyTorch(@TempDir Path dir) throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    TabularAttentionClassifier clf = new TabularAttentionClassifier()
        .setModelPath(fixture("wide.model.safetensors").toString()).setShards(3);
    PipelineModel fitted = withLimit("1k", () -> new Pipeline()
        .setStages(new PipelineStage[] {clf}).fit(rows(x, y, 0, nTrain)));
    TabularAttentionClassificationModel model =
        (TabularAttentionClassificationModel) fitted.stages()[0];
    assertArrayEquals(new int[] {6, 7, 7}, model.cacheShards().shardRows());
    assertEquals("the train-row cache is kept in 3 shards under " + model.cacheShards().dir()
        + ", not in the driver: see cacheShards()",
        assertThrows(IllegalStateException.class, model::trainRowCache).getMessage());
    String path = dir.resolve("pipeline").toString();
    fitted.write().save(path);
    deleteTree(Path.of(new URI(model.cacheShards().dir()))); // the loaded model must not need it

    PipelineModel loaded = PipelineModel.load(path);
    TabularAttentionClassificationModel back =
        (TabularAttentionClassificationModel) loaded.stages()[0];
    assertTrue(back.isCacheSharded());
    String shardsDir = back.cacheShards().dir();
    assertTrue(shardsDir.contains("/pipeline/stages/") && shardsDir.endsWith("/data/shards"),
        shardsDir);
    assertArrayEquals(new int[] {6, 7, 7}, back.cacheShards().shardRows());
    Dataset<Row> out = loaded.transform(rows(x, null, nTrain, x.dim(0) - nTrain));
    assertEquals(List.of("id", "features", "label", "prediction", "probability"),
        List.of(out.columns()));
    assertClose(probabilities(out), data.get("probabilities").data(),
        "loaded shards vs PyTorch");
    assertEquals(2, out.limit(2).collectAsList().size(), "a partial read of the output");
  }

  @Test
  void aStreamingMicroBatchNeedsTheBroadcastPath(@TempDir Path dir) {
    Random rnd = TestSeed.random();
    int nTrain = 20;
    Tensor x = table(rnd, nTrain + 3, 2);
    float[] y = labels(rnd, nTrain, 2);
    TabularAttentionClassificationModel model = withLimit("1k",
        () -> seeded(rnd.nextLong()).setShards(2).fit(rows(x, y, 0, nTrain)));
    rows(x, null, nTrain, 3).write().parquet(dir.resolve("in").toString());
    Dataset<Row> stream = spark.readStream().schema(INPUT).parquet(dir.resolve("in").toString());
    String msg = assertThrows(IllegalArgumentException.class, () -> model.transform(stream))
        .getMessage();
    assertTrue(msg.startsWith("the train-row cache (") && msg.contains("kept in 2 shards")
        && msg.endsWith("raise spark.mosaic.cache.broadcastBytes and fit again)"), msg);
  }

  private static TabularAttentionClassifier seeded(long seed) {
    return new TabularAttentionClassifier().setSeededWeights(true).setEmbedDim(16)
        .setNumHeads(2).setLayers(2).setMlpHidden(32).setOutputs(4).setSeed(seed);
  }

  private static float[] uncached(long seed, Tensor x, float[] y) {
    try (NanoTabPfnModel local = NanoTabPfnModel.fromStateDict("seeded",
        NanoTabPfnInit.seeded(new NanoTabPfnShape(16, 2, 2, 32, 4), seed), 2, null, 1)) {
      return local.probabilities(local.logits(x, y), y).data();
    }
  }

  private static <T> T withLimit(String bytes, Supplier<T> body) {
    spark.conf().set(TabularAttentionClassificationModel.BROADCAST_BYTES, bytes);
    try {
      return body.get();
    } finally {
      spark.conf().unset(TabularAttentionClassificationModel.BROADCAST_BYTES);
    }
  }

  private static Tensor table(Random rnd, int rows, int features) {
    float[] xs = new float[rows * features];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = (float) (rnd.nextGaussian() * (1 + i % features * 10));
    }
    return Tensor.of(xs, rows, features);
  }

  private static float[] labels(Random rnd, int n, int classes) {
    float[] y = new float[n];
    for (int i = 0; i < n; i++) {
      y[i] = i < classes ? i : rnd.nextInt(classes); // every class present
    }
    return y;
  }

  /** Rows {@code from..} of {@code x} as (id, array<float>, label). */
  private static Dataset<Row> rows(Tensor x, float[] y, int from, int count) {
    int f = x.dim(1);
    List<Row> rows = new ArrayList<>();
    for (int r = from; r < from + count; r++) {
      List<Float> v = new ArrayList<>();
      for (int c = 0; c < f; c++) {
        v.add(x.data()[r * f + c]);
      }
      rows.add(RowFactory.create((long) r, v, y == null ? null : (double) y[r]));
    }
    return spark.createDataFrame(rows, INPUT);
  }

  /** The probability column, rows in id order, flattened. */
  private static float[] probabilities(Dataset<Row> out) {
    List<Row> rows = new ArrayList<>(out.collectAsList());
    rows.sort(Comparator.comparingLong(r -> r.getLong(r.fieldIndex("id"))));
    List<Float> all = new ArrayList<>();
    for (Row r : rows) {
      all.addAll(r.getList(r.fieldIndex("probability")));
    }
    float[] p = new float[all.size()];
    for (int i = 0; i < p.length; i++) {
      p[i] = all.get(i);
    }
    return p;
  }

  private static void assertClose(float[] actual, float[] expected, String what) {
    assertEquals(expected.length, actual.length, what + ": lengths");
    double err = RelativeError.of(actual, expected);
    assertTrue(err < TOL, what + ": relative error " + err);
  }

  private static void deleteTree(Path root) throws java.io.IOException {
    try (var files = Files.walk(root)) {
      files.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
    }
    assertFalse(Files.exists(root));
  }

  private static Path fixture(String file) throws java.net.URISyntaxException {
    return Path.of(ShardedCacheTest.class.getResource("/fixtures/nanotabpfn/" + file).toURI());
  }
}
