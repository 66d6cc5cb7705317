package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole nanoTabPFN model's parameter gradients for its training loss (mean cross-entropy of
 * the test rows) against PyTorch autograd in float64 on the same fp32 weights and table
 * ({@code tools/fixtures/backward_fixtures.py}; awkward columns: constant, huge-scaled, a clipped
 * outlier).
 */
class NanoTabPfnBackwardTest {
  /**
   * fp32 forward and backward through 1–2 blocks of E ≤ 24 over ≤ 23 rows: ~1e-6 relative per
   * gradient, norm-wise; the contract's bound is 1e-4.
   */
  private static final double TOL = 1e-4;

  static Path fixture(String file) {
    try {
      return Path.of(NanoTabPfnBackwardTest.class.getResource("/fixtures/backward/" + file)
          .toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"model_small", "model_deep"})
  void everyParameterGradientEqualsPyTorch(String name) {
    Map<String, Tensor> data = Safetensors.read(fixture(name + ".data.safetensors"));
    float[] yTrain = data.get("y_train").data();
    float[] yTestF = data.get("y_test").data();
    int[] yTest = new int[yTestF.length];
    for (int i = 0; i < yTest.length; i++) {
      yTest[i] = (int) yTestF[i];
    }
    try (NanoTabPfnModel model =
            NanoTabPfnCheckpoint.load(fixture(name + ".model.safetensors"), null, 2);
        NanoTabPfnBackward backward = new NanoTabPfnBackward(model, 2)) {
      NanoTabPfnBackward.Result r = backward.lossAndGradients(data.get("x"), yTrain, yTest);
      check(name, "logits", r.logits(), data.get("logits"));
      double expectedLoss = data.get("loss").data()[0];
      assertEquals(expectedLoss, r.loss(), TOL * Math.abs(expectedLoss), name + " loss");
      assertEquals(List.copyOf(model.stateDict().keySet()), List.copyOf(r.gradients().keySet()),
          name + ": one gradient per state_dict tensor, in its order");
      for (Map.Entry<String, Tensor> g : r.gradients().entrySet()) {
        check(name, g.getKey(), g.getValue(), data.get("grad." + g.getKey()));
      }
    }
  }

  static void check(String fixture, String what, Tensor actual, Tensor expected) {
    assertArrayEquals(expected.shape(), actual.shape(), fixture + " " + what + " shape");
    double err = RelativeError.of(actual, expected);
    System.out.printf("%s %s: relative error %.2e%n", fixture, what, err);
    assertTrue(err < TOL, fixture + " " + what + ": relative error " + err + " (tolerance "
        + TOL + ")");
  }
}
