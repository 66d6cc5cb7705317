package dev.mosaic.ml;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.ShippedModel;
import dev.mosaic.spark.prior.Prior;
import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.prior.PriorSizes;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
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

/**
 * The Estimator's weights: the shipped model when no path is given (its scores equal the shipped
 * weights run uncached in one JVM), a given path wins over it, and seeded sizes need
 * {@code seededWeights}. No accuracy is asserted: the shipped file may be the untrained
 * placeholder. The cached and uncached paths differ only in fp32 summation order, so 1e-5
 * relative error has a wide margin (as in {@link TabularAttentionClassifierTest}).
 */
@Timeout(900) // minutes on a CPU-starved shared machine; seconds when idle
class ShippedModelDefaultTest {
  private static final double TOL = 1e-5;
  private static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false)
      .add("label", DataTypes.IntegerType, true);
  private static SparkSession spark;

  @BeforeAll
  static void start() {
    spark = MlTestSpark.start("mosaic-ml-shipped-model-tests");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @Test
  void withoutAPathTheShippedModelScores() {
    PriorDataset d = new Prior(new PriorSizes(80, 80, 5, 3), 11).sample(0);
    TabularAttentionClassificationModel model = new TabularAttentionClassifier().setShards(2)
        .fit(rows(d.x(), d.y(), d.features(), 0, d.nTrain()));
    float[] got = probabilities(model.transform(rows(d.x(), null, d.features(), d.nTrain(),
        d.rows() - d.nTrain())));
    ShippedModel.Loaded shipped = ShippedModel.load();
    float[] expected;
    try (NanoTabPfnModel local = NanoTabPfnModel.fromStateDict(shipped.source(),
        shipped.stateDict(), shipped.numHeads(), null, 1)) {
      expected = local.probabilities(local.logits(d.xTensor(), d.yTrain()), d.yTrain()).data();
    }
    double err = RelativeError.of(got, expected);
    assertTrue(err < TOL, "probabilities vs the shipped model uncached: relative error " + err);
  }

  @Test
  void anExplicitPathWinsOverTheShippedModel() throws Exception {
    Map<String, Tensor> data = Safetensors.read(fixture("wide.data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    int f = x.dim(1);
    TabularAttentionClassificationModel model = new TabularAttentionClassifier()
        .setModelPath(fixture("wide.model.safetensors").toString()).setShards(2)
        .fit(rows(x.data(), y, f, 0, nTrain));
    float[] got = probabilities(model.transform(rows(x.data(), null, f, nTrain,
        x.dim(0) - nTrain)));
    double err = RelativeError.of(got, data.get("probabilities").data());
    assertTrue(err < TOL, "probabilities vs PyTorch with the fixture's weights: relative error "
        + err);
  }

  @Test
  void seededSizesWithoutSeededWeightsAndTwoSourcesAreOneLineErrors() {
    Dataset<Row> train = rows(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, new float[] {0, 1, 1, 0}, 2,
        0, 4);
    assertEquals("embedDim sizes seeded weights, but seededWeights is false (the shipped model"
        + " is used): set seededWeights to true, or unset embedDim",
        assertThrows(IllegalArgumentException.class,
            () -> new TabularAttentionClassifier().setEmbedDim(8).fit(train)).getMessage());
    assertEquals("seed sizes seeded weights, but seededWeights is false (the checkpoint"
        + " /m.safetensors is used): set seededWeights to true, or unset seed",
        assertThrows(IllegalArgumentException.class, () -> new TabularAttentionClassifier()
            .setModelPath("/m.safetensors").setSeed(3).fit(train)).getMessage());
    assertEquals("seededWeights is true and modelPath is '/m.safetensors': expected one source"
        + " of weights, unset one of them", assertThrows(IllegalArgumentException.class,
            () -> new TabularAttentionClassifier().setSeededWeights(true)
                .setModelPath("/m.safetensors").fit(train)).getMessage());
  }

  /** Rows {@code from..from+count} of row-major {@code x} as (id, array<float>, label or null). */
  private static Dataset<Row> rows(float[] x, float[] y, int features, int from, int count) {
    List<Row> out = new ArrayList<>();
    for (int r = from; r < from + count; r++) {
      float[] v = new float[features];
      System.arraycopy(x, r * features, v, 0, features);
      out.add(RowFactory.create((long) r, v, y == null ? null : (int) y[r]));
    }
    return spark.createDataFrame(out, SCHEMA);
  }

  /** The probability column in row-id order, flattened. */
  private static float[] probabilities(Dataset<Row> scored) {
    List<Row> rows = new ArrayList<>(scored.select("id", "probability").collectAsList());
    rows.sort(Comparator.comparingLong(r -> r.getLong(0)));
    List<Float> all = new ArrayList<>();
    for (Row r : rows) {
      all.addAll(r.getList(1));
    }
    float[] p = new float[all.size()];
    for (int i = 0; i < p.length; i++) {
      p[i] = all.get(i);
    }
    return p;
  }

  private static Path fixture(String file) throws URISyntaxException {
    return Path.of(ShippedModelDefaultTest.class.getResource("/fixtures/nanotabpfn/" + file)
        .toURI());
  }
}
