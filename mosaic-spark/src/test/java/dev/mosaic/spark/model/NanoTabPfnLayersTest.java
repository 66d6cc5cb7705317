package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** LayerNorm, exact GELU and Linear on their own against PyTorch (layers.safetensors). */
class NanoTabPfnLayersTest {
  private static final double TOL = 1e-6;
  private final Map<String, Tensor> f = NanoTabPfnFixtures.layers();

  @Test
  void layerNormEqualsPyTorch() {
    float[] x = f.get("x").data().clone();
    new LayerNorm(f.get("layer_norm.weight").data(), f.get("layer_norm.bias").data()).apply(x);
    double err = RelativeError.of(x, f.get("layer_norm.out").data());
    assertTrue(err < TOL, "LayerNorm relative error " + err);
  }

  @Test
  void linearEqualsPyTorch() {
    try (Parallel p = new Parallel(2, "test-linear")) {
      float[] y = new Linear(f.get("linear.weight"), f.get("linear.bias"))
          .forward(f.get("x").data(), f.get("x").dim(0), p);
      double err = RelativeError.of(y, f.get("linear.out").data());
      assertTrue(err < TOL, "Linear relative error " + err);
    }
  }

  @Test
  void exactGeluEqualsPyTorchOnMinus8To8() {
    float[] g = f.get("gelu.x").data().clone();
    ExactGelu.applyInPlace(g);
    float[] expected = f.get("gelu.out").data();
    double err = RelativeError.of(g, expected);
    assertTrue(err < TOL, "GELU relative error " + err);
    float[] x = f.get("gelu.x").data();
    for (int i = 0; i < g.length; i++) {
      // elementwise too (the tanh approximation is ~1e-4 off near |x| = 2): fp32 rounds 1 + erf
      // to ulp(1)/2 and PyTorch's vectorised erf is a few ulp(1) off, times |x|/2
      double bound = 2 * Math.ulp(1f) * Math.max(1, Math.abs(x[i]));
      assertTrue(Math.abs(g[i] - expected[i]) <= bound,
          "GELU(" + x[i] + ") = " + g[i] + ", PyTorch " + expected[i]);
    }
  }
}
