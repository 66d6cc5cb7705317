package dev.mosaic.ml;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.test.TestSeed;
import java.math.BigDecimal;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Features as numeric scalar columns listed by name ({@code setFeatureCols}), the way tables
 * usually hold them, without a VectorAssembler: equal to PyTorch through a Pipeline with
 * save/load and on the sharded-cache scoring path, any numeric type read as its value, and bad
 * columns refused in one line on the driver before any barrier stage. fp32 throughout; 1e-5 as
 * in {@link TabularAttentionClassifierTest}.
 */
@Timeout(900) // minutes on a CPU-starved shared machine; seconds when idle
class ScalarFeatureColumnsTest {
  private static final double TOL = 1e-5;
  private static final String[] FEATURES = {"f0", "f1", "f2", "f3"};
  /** The fixture's four features as columns of different types, in another order than listed. */
  private static final StructType SCALARS = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("f2", DataTypes.DoubleType, true)
      .add("label", DataTypes.DoubleType, true)
      .add("f0", DataTypes.FloatType, true)
      .add("f3", DataTypes.DoubleType, false)
      .add("f1", DataTypes.FloatType, true);
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
  void pipelineOfScalarColumnsWithSaveAndLoadEqualsPyTorch(@TempDir Path dir) throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    TabularAttentionClassifier clf = new TabularAttentionClassifier()
        .setModelPath(fixture("wide.model.safetensors").toString()).setShards(2)
        .setFeatureCols(FEATURES);
    Pipeline pipeline = new Pipeline().setStages(new PipelineStage[] {clf});
    String unfitted = dir.resolve("unfitted").toString();
    pipeline.write().save(unfitted);
    PipelineModel fitted = Pipeline.load(unfitted).fit(scalarRows(x, y, 0, nTrain));
    String path = dir.resolve("fitted").toString();
    fitted.write().save(path);
    TabularAttentionClassificationModel loaded =
        (TabularAttentionClassificationModel) PipelineModel.load(path).stages()[0];
    assertArrayEquals(FEATURES, loaded.getOrDefault(loaded.featureCols()));

    Dataset<Row> out = PipelineModel.load(path).transform(scalarRows(x, null, nTrain,
        x.dim(0) - nTrain));
    assertEquals(List.of("id", "f2", "label", "f0", "f3", "f1", "prediction", "probability"),
        List.of(out.columns()));
    double err = RelativeError.of(probabilities(out), data.get("probabilities").data());
    assertTrue(err < TOL, "probabilities vs PyTorch: relative error " + err);
  }

  @Test
  void scalarColumnsScoreOnTheShardedCachePathToo() throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    spark.conf().set(TabularAttentionClassificationModel.BROADCAST_BYTES, "1k");
    try {
      TabularAttentionClassificationModel model = new TabularAttentionClassifier()
          .setModelPath(fixture("wide.model.safetensors").toString()).setShards(2)
          .setFeatureCols(FEATURES).fit(scalarRows(x, y, 0, nTrain));
      assertTrue(model.isCacheSharded(), "a fit above the broadcast limit keeps shards");
      double err = RelativeError.of(probabilities(model.transform(scalarRows(x, null, nTrain,
          x.dim(0) - nTrain))), data.get("probabilities").data());
      assertTrue(err < TOL, "sharded-path probabilities vs PyTorch: relative error " + err);
    } finally {
      spark.conf().unset(TabularAttentionClassificationModel.BROADCAST_BYTES);
    }
  }

  @Test
  void everyNumericTypeReadsAsItsValue() {
    Random rnd = TestSeed.random();
    int rows = 40;
    int nTrain = 30;
    StructType schema = new StructType().add("id", DataTypes.LongType, false)
        .add("b", DataTypes.ByteType).add("s", DataTypes.ShortType)
        .add("i", DataTypes.IntegerType).add("l", DataTypes.LongType)
        .add("d", DataTypes.createDecimalType(10, 3)).add("label", DataTypes.IntegerType)
        .add("features", DataTypes.createArrayType(DataTypes.DoubleType, false));
    List<Row> all = new ArrayList<>();
    for (int r = 0; r < rows; r++) {
      byte b = (byte) (rnd.nextInt(200) - 100);
      short s = (short) (rnd.nextInt(20000) - 10000);
      int i = rnd.nextInt(1000);
      long l = rnd.nextInt(50) - 25;
      BigDecimal d = BigDecimal.valueOf(rnd.nextInt(2_000_000) - 1_000_000, 3);
      all.add(RowFactory.create((long) r, b, s, i, l, d, r < nTrain ? rnd.nextInt(3) : null,
          Arrays.asList((double) b, (double) s, (double) i, (double) l, d.doubleValue())));
    }
    Dataset<Row> train = spark.createDataFrame(all.subList(0, nTrain), schema);
    Dataset<Row> test = spark.createDataFrame(all.subList(nTrain, rows), schema);
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setShards(2)
        .setSeededWeights(true).setEmbedDim(16).setMlpHidden(16).setOutputs(3)
        .setSeed(rnd.nextLong());
    float[] fromScalars = probabilities(clf.copy(new org.apache.spark.ml.param.ParamMap())
        .setFeatureCols("b", "s", "i", "l", "d").fit(train).transform(test));
    float[] fromArray = probabilities(clf.fit(train).transform(test));
    double err = RelativeError.of(fromScalars, fromArray);
    assertTrue(err < TOL, "scalar columns vs the same values as an array: relative error " + err);
  }

  @Test
  void badScalarColumnsAreOneLineErrorsBeforeAnyBarrierStage() throws Exception {
    Tensor x = Tensor.of(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 4,
        4);
    float[] y = {0, 1, 1, 0};
    Dataset<Row> good = scalarRows(x, y, 0, 4);
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setSeededWeights(true)
        .setEmbedDim(8).setMlpHidden(8).setLayers(1).setShards(2).setFeatureCols(FEATURES);
    AtomicBoolean barrierStage = new AtomicBoolean();
    SparkListener listener = new SparkListener() {
      @Override
      public void onStageSubmitted(SparkListenerStageSubmitted e) {
        if (e.stageInfo().rddInfos().exists(info -> info.isBarrier())) {
          barrierStage.set(true);
        }
      }
    };
    spark.sparkContext().addSparkListener(listener);
    try {
      assertEquals("column 'f1' is null in row 2 of the training DataFrame (0-based): expected a"
          + " number", message(() -> clf.fit(withNull(good, 2, "f1"))));
      assertEquals("column 'f2' in featureCols must be a numeric type, got string",
          message(() -> clf.fit(good.withColumn("f2", functions.lit("x")))));
      assertEquals("column 'f9' is missing; the input has [id, f2, label, f0, f3, f1]",
          message(() -> copy(clf).setFeatureCols("f0", "f9").fit(good)));
      assertEquals("featureCols lists column 'f0' twice: expected each column once",
          message(() -> copy(clf).setFeatureCols("f0", "f1", "f0").fit(good)));
      assertEquals("set featuresCol or featureCols, not both: got featuresCol 'features' and"
          + " featureCols [f0, f1, f2, f3]",
          message(() -> copy(clf).setFeaturesCol("features").fit(good)));
      assertEquals("column 'label' is both the label and a feature: expected the label apart"
          + " from the features", message(() -> copy(clf).setFeatureCols("f0", "label")
              .fit(good)));
      spark.sparkContext().listenerBus().waitUntilEmpty(60_000);
      assertFalse(barrierStage.get(), "a barrier stage ran although the input was refused");
    } finally {
      spark.sparkContext().removeSparkListener(listener);
    }

    TabularAttentionClassificationModel model = clf.fit(good);
    assertEquals("featureCols lists 3 columns [f0, f1, f2]: expected 4 (as the train rows)",
        message(() -> model.copy(new org.apache.spark.ml.param.ParamMap())
            .setFeatureCols("f0", "f1", "f2").transform(good)));
    Throwable scored = assertThrows(Exception.class,
        () -> model.transform(withNull(good, 1, "f3").repartition(1)).collect());
    String cause = rootCause(scored).getMessage();
    assertTrue(String.valueOf(cause).matches("column 'f3' is null in row \\d of partition 0:"
        + " expected a number"), cause);
  }

  /** Rows {@code from..} of {@code x} as scalar columns ({@link #SCALARS}). */
  private static Dataset<Row> scalarRows(Tensor x, float[] y, int from, int count) {
    int f = x.dim(1);
    List<Row> rows = new ArrayList<>();
    for (int r = from; r < from + count; r++) {
      float[] v = Arrays.copyOfRange(x.data(), r * f, r * f + f);
      rows.add(RowFactory.create((long) r, (double) v[2], y == null ? null : (double) y[r],
          v[0], (double) v[3], v[1]));
    }
    return spark.createDataFrame(rows, SCALARS);
  }

  /** {@code df} (small, local) with column {@code column} of row {@code id} set to null. */
  private static Dataset<Row> withNull(Dataset<Row> df, int id, String column) {
    List<Row> rows = new ArrayList<>(df.collectAsList());
    Object[] values = new Object[SCALARS.size()];
    for (int c = 0; c < values.length; c++) {
      values[c] = rows.get(id).get(c);
    }
    values[SCALARS.fieldIndex(column)] = null;
    rows.set(id, RowFactory.create(values));
    StructType nullable = new StructType();
    for (var field : SCALARS.fields()) {
      nullable = nullable.add(field.name(), field.dataType(), true);
    }
    return spark.createDataFrame(rows, nullable);
  }

  private static TabularAttentionClassifier copy(TabularAttentionClassifier clf) {
    return clf.copy(new org.apache.spark.ml.param.ParamMap());
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
    return Path.of(ScalarFeatureColumnsTest.class
        .getResource("/fixtures/nanotabpfn/" + file).toURI());
  }
}
