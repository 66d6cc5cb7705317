package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.test.TestSeed;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The layer backward against central finite differences of a double-precision forward
 * ({@link NaiveMultiAxisAttention}, which shares no code with the layer) on tiny shapes: every
 * entry of x and of the four weight tensors.
 */
class MultiAxisAttentionFiniteDifferenceTest {
  /**
   * Step h = 2⁻¹⁰: the central difference's truncation error is ~h²·|f'''|/6 ≈ 1e-7·|f'''|,
   * double rounding ~1e-16/h is nil; the analytic gradients are fp32 (~1e-6 relative). The
   * perturbed value is rounded to fp32, so the step actually taken is measured, not assumed.
   */
  private static final double H = 1.0 / 1024;
  private static final double TOL = 1e-4;

  @ParameterizedTest
  @CsvSource({"1, false, -1", "1, true, -1", "0, false, 3", "-2, true, 4"})
  void gradientsEqualFiniteDifferences(int axis, boolean causal, long keyLimit) {
    Random rnd = new Random(TestSeed.mix(TestSeed.get(), 131, axis + 10, causal ? 1 : 0));
    int e = 4;
    int heads = 2;
    Tensor x = Tensor.randn(rnd, 1f, 3, 5, e);
    Tensor dy = Tensor.randn(rnd, 1f, 3, 5, e);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.5f, 3 * e, e),
        Tensor.randn(rnd, 0.3f, 3 * e), Tensor.randn(rnd, 0.5f, e, e), Tensor.randn(rnd, 0.3f, e));
    long limit = keyLimit < 0 ? Long.MAX_VALUE : keyLimit;
    Gradients g;
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, heads, axis).weights(w)
        .causal(causal).threads(1).build()) {
      g = layer.backward(layer.forwardForBackward(x, limit), dy);
    }
    Loss loss = () -> dot(NaiveMultiAxisAttention.forwardDouble(x, w, heads, axis, causal,
        limit), dy.data());
    String where = "axis " + axis + (causal ? " causal" : "") + " keyLimit " + keyLimit + "; "
        + TestSeed.replayHint();
    compare("dx", g.input(), x.data(), loss, where);
    for (Map.Entry<String, Tensor> p : w.toMap("").entrySet()) {
      compare(p.getKey(), g.parameters().get(p.getKey()).data(), p.getValue().data(), loss,
          where);
    }
  }

  private interface Loss {
    double value();
  }

  /** Central differences of {@code loss} in every entry of {@code param} (perturbed in place). */
  private static void compare(String name, float[] analytic, float[] param, Loss loss,
      String where) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < param.length; i++) {
      float orig = param[i];
      param[i] = (float) (orig + H);
      double up = param[i] - (double) orig;
      double fUp = loss.value();
      param[i] = (float) (orig - H);
      double down = (double) orig - param[i];
      double fDown = loss.value();
      param[i] = orig;
      double fd = (fUp - fDown) / (up + down);
      num += (analytic[i] - fd) * (analytic[i] - fd);
      den += fd * fd;
    }
    double err = Math.sqrt(num / Math.max(den, 1e-300));
    System.out.printf("%s %s: relative error %.2e%n", where, name, err);
    assertTrue(err < TOL, name + ": relative error " + err + " against finite differences ("
        + where + ")");
  }

  private static double dot(double[] a, float[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }
}
