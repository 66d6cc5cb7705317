package dev.mosaic.ml;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.model.TrainRowCache;
import dev.mosaic.test.TestSeed;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.Trigger;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Estimator/Model pair over real Spark stages: fit (driver aggregations + one barrier stage)
 * builds the train-row cache; transform scores in ordinary tasks. Checked against PyTorch's
 * probabilities on a committed fixture through a whole Pipeline with save/load, against the
 * uncached model in one JVM, and on a streaming micro-batch. fp32 throughout; the cached and
 * uncached paths differ only in summation order, so 1e-5 has a wide margin.
 */
@Timeout(900) // minutes on a CPU-starved shared machine; seconds when idle
class TabularAttentionClassifierTest {
  private static final double TOL = 1e-5;
  private static final StructType ARRAY_INPUT = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("features", DataTypes.createArrayType(DataTypes.DoubleType, true), true)
      .add("label", DataTypes.DoubleType, true);
  private static SparkSession spark;

  @BeforeAll
  static void start() {
    spark = MlTestSpark.start("mosaic-ml-tests");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @Test
  void pipelineWithSaveAndLoadEqualsPyTorch(@TempDir Path dir) throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    Dataset<Row> train = arrayRows(x, y, 0, nTrain);
    Dataset<Row> test = arrayRows(x, null, nTrain, x.dim(0) - nTrain)
        .withColumn("extra", functions.lit("kept"));
    TabularAttentionClassifier clf = new TabularAttentionClassifier()
        .setModelPath(fixture("wide.model.safetensors").toString()).setShards(2);
    PipelineModel fitted = new Pipeline().setStages(new PipelineStage[] {clf}).fit(train);
    String path = dir.resolve("pipeline").toString();
    fitted.write().save(path);
    PipelineModel loaded = PipelineModel.load(path);

    TrainRowCache saved =
        ((TabularAttentionClassificationModel) fitted.stages()[0]).trainRowCache();
    TrainRowCache back =
        ((TabularAttentionClassificationModel) loaded.stages()[0]).trainRowCache();
    for (int i = 0; i < saved.blocks().size(); i++) {
      assertArrayEquals(saved.blocks().get(i).data(), back.blocks().get(i).data(), 0f,
          "the loaded cache of block " + i);
    }

    Dataset<Row> out = loaded.transform(test);
    assertEquals(List.of("id", "features", "label", "extra", "prediction", "probability"),
        List.of(out.columns()));
    List<Row> rows = collectById(out);
    Tensor expected = data.get("probabilities");
    double err = RelativeError.of(probabilities(rows), expected.data());
    assertTrue(err < TOL, "probabilities vs PyTorch: relative error " + err);
    int classes = expected.dim(1);
    for (int r = 0; r < rows.size(); r++) {
      assertEquals("kept", rows.get(r).getString(3));
      assertEquals(CachedScoring.argMax(Arrays.copyOfRange(expected.data(), r * classes,
          (r + 1) * classes)), rows.get(r).getInt(4), "prediction of test row " + r);
    }
  }

  @Test
  void vectorFeaturesDenseAndSparseScoreAsArrays() throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    int f = x.dim(1);
    StructType schema = new StructType().add("id", DataTypes.LongType, false)
        .add("features", SQLDataTypes.VectorType(), false).add("label", DataTypes.DoubleType);
    List<Row> trainRows = new ArrayList<>();
    List<Row> testRows = new ArrayList<>();
    for (int r = 0; r < x.dim(0); r++) {
      double[] v = new double[f];
      for (int c = 0; c < f; c++) {
        v[c] = x.data()[r * f + c];
      }
      // every other row sparse, as VectorAssembler makes rows with many zeros
      Object vec = r % 2 == 0 ? Vectors.dense(v) : Vectors.dense(v).toSparse();
      if (r < nTrain) {
        trainRows.add(RowFactory.create((long) r, vec, (double) y[r]));
      } else {
        testRows.add(RowFactory.create((long) r, vec, null));
      }
    }
    TabularAttentionClassificationModel model = new TabularAttentionClassifier()
        .setModelPath(fixture("wide.model.safetensors").toString()).setShards(3)
        .fit(spark.createDataFrame(trainRows, schema));
    double err = RelativeError.of(probabilities(model.transform(
        spark.createDataFrame(testRows, schema))), data.get("probabilities").data());
    assertTrue(err < TOL, "probabilities vs PyTorch: relative error " + err);
  }

  @Test
  void seededWeightsOverUnevenShardsEqualTheUncachedModel() {
    Random rnd = TestSeed.random();
    int rows = 70;
    int nTrain = 53;
    int features = 4;
    float[] xs = new float[rows * features];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = (float) (rnd.nextGaussian() * (1 + i % features * 10));
    }
    float[] y = new float[nTrain];
    for (int i = 0; i < nTrain; i++) {
      y[i] = rnd.nextInt(3);
    }
    Tensor x = Tensor.of(xs, rows, features);
    long seed = rnd.nextLong();
    TabularAttentionClassificationModel model = new TabularAttentionClassifier().setShards(3)
        .setSeededWeights(true).setEmbedDim(16).setNumHeads(2).setLayers(2).setMlpHidden(32)
        .setOutputs(4).setSeed(seed)
        .fit(arrayRows(x, y, 0, nTrain));
    // test rows over 4 partitions: scoring does not care how rows are split
    float[] got = probabilities(model.transform(arrayRows(x, null, nTrain, rows - nTrain)
        .repartition(4)));
    float[] expected;
    try (NanoTabPfnModel local = NanoTabPfnModel.fromStateDict("seeded",
        NanoTabPfnInit.seeded(new NanoTabPfnShape(16, 2, 2, 32, 4), seed), 2, null, 1)) {
      expected = local.probabilities(local.logits(x, y), y).data();
    }
    double err = RelativeError.of(got, expected);
    assertTrue(err < TOL, "probabilities vs the uncached model: relative error " + err);
  }

  @Test
  void scoresAStructuredStreamingMicroBatch(@TempDir Path dir) throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    TabularAttentionClassificationModel model = new TabularAttentionClassifier()
        .setModelPath(fixture("wide.model.safetensors").toString()).setShards(2)
        .fit(arrayRows(x, y, 0, nTrain));
    String input = dir.resolve("in").toString();
    arrayRows(x, null, nTrain, x.dim(0) - nTrain).repartition(2).write().parquet(input);
    Dataset<Row> stream = spark.readStream().schema(ARRAY_INPUT).parquet(input);
    StreamingQuery q = model.transform(stream).writeStream().format("memory")
        .queryName("mosaic_scored").trigger(Trigger.AvailableNow())
        .option("checkpointLocation", dir.resolve("checkpoint").toString()).start();
    try {
      assertTrue(q.awaitTermination(TimeUnit.MINUTES.toMillis(3)), "the stream did not finish");
    } finally {
      q.stop();
    }
    double err = RelativeError.of(probabilities(spark.table("mosaic_scored")),
        data.get("probabilities").data());
    assertTrue(err < TOL, "streamed probabilities vs PyTorch: relative error " + err);
  }

  @Test
  void badInputsAreOneLineErrorsBeforeAnyBarrierStage() {
    Tensor x = Tensor.of(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 4, 2);
    float[] y = {0, 1, 1, 0};
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setSeededWeights(true)
        .setEmbedDim(8).setMlpHidden(8).setLayers(1).setShards(2);
    Dataset<Row> good = arrayRows(x, y, 0, 4);
    assertEquals("column 'feats' is missing; the input has [id, features, label]",
        message(() -> clf.copy(new org.apache.spark.ml.param.ParamMap()).setFeaturesCol("feats")
            .fit(good)));
    assertEquals("column 'label' must be a numeric type, got string",
        message(() -> clf.fit(good.withColumn("label", functions.lit("x")))));
    assertEquals("column 'features' must be array<float>, array<double> or an ML Vector, got"
        + " string", message(() -> clf.fit(good.withColumn("features", functions.lit("x")))));
    assertEquals("column 'features' has a null at element 1 in row 2 of the training DataFrame"
        + " (0-based): expected numbers", message(() -> clf.fit(withRow(good, 2,
            RowFactory.create(2L, Arrays.asList(5.0, null), 1.0)))));
    assertEquals("column 'label' is null in row 3 of the training DataFrame (0-based): every"
        + " train row needs its class id", message(() -> clf.fit(withRow(good, 3,
            RowFactory.create(3L, Arrays.asList(7.0, 8.0), null)))));
    assertEquals("column 'label' must hold class ids (non-negative integers), got 0.5 in row 1"
        + " of the training DataFrame (0-based)", message(() -> clf.fit(withRow(good, 1,
            RowFactory.create(1L, Arrays.asList(3.0, 4.0), 0.5)))));
    assertEquals("row 3 of the training DataFrame (0-based) has 3 features, row 0 has 2:"
        + " expected the same count", message(() -> clf.fit(withRow(good, 3,
            RowFactory.create(3L, Arrays.asList(7.0, 8.0, 9.0), 0.0)))));
    assertEquals("column 'label' has class id 12: expected at most 9 (the model has 10"
        + " outputs)", message(() -> clf.fit(withRow(good, 0,
            RowFactory.create(0L, Arrays.asList(1.0, 2.0), 12.0)))));
    assertEquals("the training DataFrame is empty: expected at least one row",
        message(() -> clf.fit(good.limit(0))));
    TabularAttentionClassificationModel model = clf.fit(good);
    assertEquals("output column 'prediction' already exists",
        message(() -> model.transform(good.withColumn("prediction", functions.lit(1)))));
    Throwable streamed = assertThrows(Exception.class, () -> model.transform(withRow(good, 1,
        RowFactory.create(1L, Arrays.asList(3.0, 4.0, 5.0), null)).repartition(1)).collect());
    assertTrue(String.valueOf(rootCause(streamed).getMessage()).startsWith(
        "column 'features' has 3 features in row "), rootCause(streamed).getMessage());
  }

  @Test
  void estimatorParamsSurviveSaveAndLoad(@TempDir Path dir) throws Exception {
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setShards(3)
        .setFeaturesCol("f").setModelPath("/models/m.safetensors").setNumHeads(4);
    String path = dir.resolve("clf").toString();
    clf.write().save(path);
    TabularAttentionClassifier back = TabularAttentionClassifier.load(path);
    assertEquals(clf.uid(), back.uid());
    assertEquals(3, back.getOrDefault(back.shards()));
    assertEquals(4, back.getOrDefault(back.numHeads()));
    assertEquals("f", back.getOrDefault(back.featuresCol()));
    assertEquals("/models/m.safetensors", back.getOrDefault(back.modelPath()));
  }

  /** Rows {@code from..} of {@code x} as (id, array<double> with nullable elements, label). */
  private static Dataset<Row> arrayRows(Tensor x, float[] y, int from, int count) {
    int f = x.dim(1);
    List<Row> rows = new ArrayList<>();
    for (int r = from; r < from + count; r++) {
      List<Double> v = new ArrayList<>();
      for (int c = 0; c < f; c++) {
        v.add((double) x.data()[r * f + c]);
      }
      rows.add(RowFactory.create((long) r, v, y == null ? null : (double) y[r]));
    }
    return spark.createDataFrame(rows, ARRAY_INPUT);
  }

  /** {@code df} (a small local one) with row {@code id} replaced, in the same order. */
  private static Dataset<Row> withRow(Dataset<Row> df, long id, Row replacement) {
    List<Row> rows = new ArrayList<>(df.collectAsList());
    rows.set((int) id, replacement);
    return spark.createDataFrame(rows, ARRAY_INPUT);
  }

  /** The output rows in id order (sorted here: a Spark sort would cost a shuffle). */
  private static List<Row> collectById(Dataset<Row> out) {
    List<Row> rows = new ArrayList<>(out.collectAsList());
    rows.sort(java.util.Comparator.comparingLong(r -> r.getLong(r.fieldIndex("id"))));
    return rows;
  }

  /** The probability column, rows in id order, flattened. */
  private static float[] probabilities(Dataset<Row> out) {
    return probabilities(collectById(out));
  }

  private static float[] probabilities(List<Row> rows) {
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

  private static String message(org.junit.jupiter.api.function.Executable e) {
    return assertThrows(IllegalArgumentException.class, e).getMessage();
  }

  private static Throwable rootCause(Throwable t) {
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t;
  }

  private static Path fixture(String file) throws URISyntaxException {
    return Path.of(TabularAttentionClassifierTest.class
        .getResource("/fixtures/nanotabpfn/" + file).toURI());
  }
}
