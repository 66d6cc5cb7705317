package dev.mosaic.kernels.grad;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Linear, LayerNorm, exact GELU and cross-entropy backward against PyTorch autograd (float64 on
 * the same fp32 inputs; {@code tools/fixtures/backward_fixtures.py}). These layers compute in
 * double from the fp32 inputs and round once, so only two roundings to fp32 separate them from
 * the oracle (theirs and the fixture's): u each, 2^-24 ≈ 6e-8 relative. The bound, 16u ≈ 1e-6,
 * leaves room for the double sums' own error (~1e-16 per term, negligible).
 */
class LayerBackwardTest {
  private static final double TOL = 16 * Accuracy.FP32_U;
  private static Map<String, Tensor> t;

  @BeforeAll
  static void load() throws Exception {
    t = Safetensors.read(Path.of(LayerBackwardTest.class
        .getResource("/fixtures/backward/layers.safetensors").toURI()));
  }

  @Test
  void linear() {
    Tensor x = t.get("linear.x");
    Gradients g = LinearBackward.backward(x.data(), x.dim(0), t.get("linear.weight"), true,
        t.get("linear.dy").data());
    Accuracy.assertClose(g.input(), t.get("linear.dx").data(), TOL, "dx");
    Accuracy.assertClose(g.parameters().get("weight").data(), t.get("linear.grad.weight").data(),
        TOL, "weight");
    Accuracy.assertClose(g.parameters().get("bias").data(), t.get("linear.grad.bias").data(), TOL,
        "bias");
    assertEquals(java.util.List.of("linear1.weight", "linear1.bias"),
        java.util.List.copyOf(g.parameters("linear1").keySet()));
    assertTrue(LinearBackward.backward(x.data(), x.dim(0), t.get("linear.weight"), false,
        t.get("linear.dy").data()).parameters().keySet().equals(java.util.Set.of("weight")));
  }

  @Test
  void layerNorm() {
    float[] x = t.get("layer_norm.x").data();
    float[] w = t.get("layer_norm.weight").data();
    LayerNormBackward.Forward f = LayerNormBackward.forward(x, w, t.get("layer_norm.bias").data());
    // The forward rounds like PyTorch's fp32 LayerNorm; the oracle is float64: a few u apart.
    Accuracy.assertClose(f.y(), t.get("layer_norm.y").data(), TOL, "y");
    Gradients g = LayerNormBackward.backward(x, w, f, t.get("layer_norm.dy").data());
    Accuracy.assertClose(g.input(), t.get("layer_norm.dx").data(), TOL, "dx");
    Accuracy.assertClose(g.parameters().get("weight").data(),
        t.get("layer_norm.grad.weight").data(), TOL, "weight");
    Accuracy.assertClose(g.parameters().get("bias").data(), t.get("layer_norm.grad.bias").data(),
        TOL, "bias");
  }

  @Test
  void exactGelu() {
    float[] x = t.get("gelu.x").data();
    float[] y = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      y[i] = GeluBackward.forward(x[i]);
    }
    Accuracy.assertClose(y, t.get("gelu.y").data(), TOL, "y");
    Accuracy.assertClose(GeluBackward.backward(x, t.get("gelu.dy").data()),
        t.get("gelu.dx").data(), TOL, "dx");
  }

  @Test
  void geluDerivativeMatchesFiniteDifferences() {
    // Central differences in double, step 1e-5: error ~1e-10, far below fp32's 6e-8.
    for (double x = -7; x <= 7; x += 0.37) {
      double h = 1e-5;
      double fd = (gelu(x + h) - gelu(x - h)) / (2 * h);
      assertEquals(fd, GeluBackward.derivative(x), 1e-8, "GELU'(" + x + ")");
    }
  }

  private static double gelu(double x) {
    return 0.5 * x * (1 + GeluBackward.erf(x / Math.sqrt(2)));
  }

  @Test
  void crossEntropy() {
    Tensor logits = t.get("cross_entropy.logits");
    float[] target = t.get("cross_entropy.target").data();
    int[] labels = new int[target.length];
    for (int i = 0; i < labels.length; i++) {
      labels[i] = Math.round(target[i]);
    }
    SoftmaxCrossEntropy.Result r =
        SoftmaxCrossEntropy.apply(logits.data(), logits.dim(1), labels);
    double want = t.get("cross_entropy.loss").data()[0];
    assertEquals(want, r.loss(), TOL * Math.abs(want), "loss");
    Accuracy.assertClose(r.dlogits(), t.get("cross_entropy.dlogits").data(), TOL, "dlogits");
  }

  @Test
  void crossEntropyStaysFiniteForHugeLogits() {
    SoftmaxCrossEntropy.Result r =
        SoftmaxCrossEntropy.apply(new float[] {3000f, -3000f, 0f, 1e4f}, 2, new int[] {1, 0});
    assertEquals((6000 + 1e4) / 2, r.loss(), 1e-9);
    assertEquals(0.5f, r.dlogits()[0]);
    assertEquals(-0.5f, r.dlogits()[1]);
  }

  @Test
  void badInputsNameTheArgument() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SoftmaxCrossEntropy.apply(new float[6], 3, new int[] {0, 3}));
    assertEquals("target[1] must be in [0, 3), got 3", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> LinearBackward.backward(new float[6], 2, Tensor.zeros(4, 3), true, new float[7]));
    assertEquals("dy must hold rows*out = 2*4 values, got 7", e.getMessage());
  }
}
