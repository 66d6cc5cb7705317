package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.io.Safetensors;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The layer backward against PyTorch autograd through {@code nn.MultiheadAttention} (float64 on
 * the same fp32 inputs; {@code tools/fixtures/backward_fixtures.py}): several axes, odd sizes,
 * causal, a key bound, and the two-axis layer. Every gradient of {@code sum(y·dy)}.
 */
class MultiAxisAttentionBackwardFixturesTest {
  /**
   * fp32 forward and backward over sequences of at most 35 positions and E ≤ 24: each gradient
   * entry is a sum of O(n·E) products with relative rounding ~1e-7 each, so ~1e-6 norm-wise;
   * the contract's bound is 1e-4.
   */
  static final double TOL = 1e-4;

  static final List<String> NAMES = List.of(AttentionWeights.IN_PROJ_WEIGHT,
      AttentionWeights.IN_PROJ_BIAS, AttentionWeights.OUT_PROJ_WEIGHT,
      AttentionWeights.OUT_PROJ_BIAS);

  static Path fixture(String file) {
    try {
      return Path.of(MultiAxisAttentionBackwardFixturesTest.class
          .getResource("/fixtures/backward/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"axis0", "axis1_causal", "axis_neg3_keybound",
      "axis_neg2_causal_keybound", "two_axis", "two_axis_causal"})
  void gradientsEqualPyTorchAutograd(String name) {
    Path file = fixture("layer_" + name + ".safetensors");
    Map<String, Tensor> t = Safetensors.read(file);
    Map<String, String> meta = Safetensors.metadata(file);
    int heads = Integer.parseInt(meta.get("num_heads"));
    int axis = Integer.parseInt(meta.get("axis"));
    long keyLimit = Long.parseLong(meta.get("key_limit"));
    long limit = keyLimit < 0 ? Long.MAX_VALUE : keyLimit;
    Tensor x = t.get("x");
    Tensor dy = t.get("dy");
    MultiAxisAttention.Builder b = MultiAxisAttention.builder(x.dim(-1), heads, axis)
        .weights(t, "").causal(Boolean.parseBoolean(meta.get("causal"))).threads(2);
    Tensor y;
    Gradients g;
    if (meta.containsKey("axis2")) {
      try (MultiAxisAttention2D layer =
          new MultiAxisAttention2D(axis, Integer.parseInt(meta.get("axis2")), b)) {
        MultiAxisAttention2D.Activations a = layer.forwardForBackward(x, limit);
        y = a.output();
        g = layer.backward(a, dy);
      }
    } else {
      try (MultiAxisAttention layer = b.build()) {
        AttentionActivations a = layer.forwardForBackward(x, limit);
        y = a.output();
        g = layer.backward(a, dy);
      }
    }
    check(name, "y", y, t.get("y"));
    check(name, "dx", Tensor.of(g.input(), x.shape()), t.get("dx"));
    assertEquals(NAMES, List.copyOf(g.parameters().keySet()));
    for (String p : NAMES) {
      check(name, p, g.parameters().get(p), t.get("grad." + p));
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
