package dev.mosaic.spark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.TestSpark;
import dev.mosaic.spark.strategy.ShardLayout;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * nanoTabPFN sharded over real Spark barrier tasks (rings of 2 and 3, uneven shards) against
 * PyTorch's own logits: the committed fixtures of tools/fixtures/nanotabpfn_fixtures.py.
 */
class NanoTabPfnJobTest {
  /** As NanoTabPfnModelTest: fp32 throughout, fixtures within 3e-6 of a float64 run. */
  private static final double TOL = 1e-5;

  /**
   * Shard sizes (a dash: {@code ctx.spSize()} near-equal shards). small: 23 rows, 15 train;
   * deep: 37 rows, 24 train; wide: 30 rows, 20 train. Every case has a shard of only train rows;
   * 15/8, 12/12/13, 4/13/6 and 3/20/7 also have one of only test rows.
   */
  @ParameterizedTest
  @CsvSource({"small, 2, -", "small, 2, 15/8", "small, 3, 4/13/6", "deep, 2, -", "deep, 3, -",
      "wide, 3, 3/20/7"})
  @Timeout(1200)
  void testLogitsOverARingEqualPyTorch(String name, int sp, String cut) {
    Map<String, Tensor> data = Safetensors.read(fixture(name + ".data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), sp);
    Tensor logits = cut.equals("-")
        ? NanoTabPfnJob.testLogits(ctx, model(name), heads(name), x, y)
        : NanoTabPfnJob.testLogits(ctx, model(name), heads(name), x, y, ShardLayout.contiguous(
            Arrays.stream(cut.split("/")).mapToInt(Integer::parseInt).toArray()));
    Tensor expected = data.get("logits");
    assertArrayEquals(expected.shape(), logits.shape());
    double err = RelativeError.of(logits, expected);
    System.out.printf("%s over %d tasks (%s): relative error of the logits %.1e%n", name, sp,
        cut, err);
    assertTrue(err < TOL, name + " over " + sp + " tasks (" + cut + "): relative error " + err);
  }

  @Test
  @Timeout(1200)
  void theDataFrameJobGivesPyTorchsProbabilitiesForTheTestRows() {
    String name = "small";
    Map<String, Tensor> data = Safetensors.read(fixture(name + ".data.safetensors"));
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int rows = x.dim(0);
    int features = x.dim(1);
    int nTrain = y.length;
    List<Row> input = new ArrayList<>();
    for (int r = 0; r < rows; r++) {
      float[] f = Arrays.copyOfRange(x.data(), r * features, (r + 1) * features);
      // test rows' labels are not known to the model: give them a wrong one
      input.add(RowFactory.create((long) r, f, r < nTrain ? (int) y[r] : 1));
    }
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 3);
    Dataset<Row> table = ctx.spark().createDataFrame(input, NanoTabPfnJob.INPUT);
    List<Row> out = NanoTabPfnJob.predict(ctx, table,
        new NanoTabPfnJob.TableSize(rows, nTrain, features), model(name), heads(name), null)
        .orderBy("row_id").collectAsList();
    assertEquals(rows, out.size());
    Tensor expected = data.get("probabilities");
    int classes = expected.dim(1);
    float[] probs = new float[(rows - nTrain) * classes];
    for (Row r : out) {
      long id = r.getLong(0);
      assertEquals(id < nTrain, r.getBoolean(2), "is_train of row " + id);
      List<Float> p = r.getList(4);
      assertEquals(classes, p.size());
      if (id >= nTrain) {
        for (int c = 0; c < classes; c++) {
          probs[(int) (id - nTrain) * classes + c] = p.get(c);
        }
        float[] want = Arrays.copyOfRange(expected.data(), (int) (id - nTrain) * classes,
            (int) (id - nTrain + 1) * classes);
        assertEquals(NanoTabPfnJob.argMax(want, 0, classes), r.getInt(3), "row " + id);
      }
    }
    double err = RelativeError.of(probs, expected.data());
    System.out.printf("DataFrame job, small over 3 tasks: relative error of the test rows'"
        + " probabilities %.1e%n", err);
    assertTrue(err < TOL, "probabilities: relative error " + err);
  }

  @Test
  void aBadStateDictFailsOnTheDriverNamingTheTensor() {
    Map<String, Tensor> broken = new LinkedHashMap<>(model("small"));
    String name = "decoder.linear1.bias";
    broken.put(name, Tensor.zeros(broken.get(name).size() + 1));
    Map<String, Tensor> data = Safetensors.read(fixture("small.data.safetensors"));
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> NanoTabPfnJob.testLogits(ctx, broken, 2, data.get("x"), data.get("y").data()));
    assertTrue(e.getMessage().contains("'" + name + "' has the wrong shape"), e.getMessage());
  }

  @Test
  void moreTasksThanRowsIsAOneLineError() {
    Map<String, Tensor> data = Safetensors.read(fixture("small.data.safetensors"));
    Tensor x = Tensor.of(Arrays.copyOf(data.get("x").data(), 2 * 5), 2, 5);
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 3);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> NanoTabPfnJob.testLogits(ctx, model("small"), 2, x, new float[] {0}));
    assertEquals("spSize 3 needs at least 3 positions along the rows of x, which has 2",
        e.getMessage());
  }

  private static Map<String, Tensor> model(String name) {
    return Safetensors.read(fixture(name + ".model.safetensors"));
  }

  private static int heads(String name) {
    return Integer.parseInt(Safetensors.metadata(fixture(name + ".model.safetensors"))
        .get(NanoTabPfnCheckpoint.HEADS_KEY));
  }

  private static Path fixture(String file) {
    try {
      return Path.of(NanoTabPfnJobTest.class.getResource("/fixtures/nanotabpfn/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }
}
