package dev.mosaic.kernels.grad;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.simd.VectorizationProvider;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The GEMM path of {@link LinearBackward} (widths that are a multiple of the vector width, here
 * several row blocks and a ragged last one) against a double-precision reference computed here.
 * Error model (see the class): fp32 sums of at most {@value LinearBackward#ROW_BLOCK} terms per
 * block, added in double: worst case ≈ 256·2⁻²⁴ ≈ 1.5e-5 of Σ|terms|; the norm-wise bound used,
 * 2e-5, holds for any inputs of these sizes. Serial and parallel must agree bit for bit.
 */
class LinearBackwardGemmTest {
  @Test
  void gemmPathMatchesDoubleReferenceAndIsThreadCountInvariant() {
    int lanes = VectorizationProvider.ops().lanes();
    int in = 4 * lanes;
    int out = 3 * lanes + 5;
    int rows = 2 * LinearBackward.ROW_BLOCK + 37;
    Random rnd = new Random(TestSeed.mix(TestSeed.get(), 17));
    float[] x = gaussian(rnd, rows * in);
    float[] w = gaussian(rnd, out * in);
    float[] dy = gaussian(rnd, rows * out);
    Tensor weight = Tensor.of(w, out, in);

    Gradients serial = LinearBackward.backward(x, rows, weight, true, dy);
    Gradients parallel;
    try (Parallel p = new Parallel(2, "linear-backward-test")) {
      parallel = LinearBackward.backward(x, rows, weight, true, dy, p);
    }
    assertArrayEquals(serial.input(), parallel.input(), "dx, serial vs 2 threads");
    assertArrayEquals(serial.parameters().get("weight").data(),
        parallel.parameters().get("weight").data(), "weight, serial vs 2 threads");

    double[] dx = new double[rows * in];
    double[] dw = new double[out * in];
    double[] db = new double[out];
    for (int r = 0; r < rows; r++) {
      for (int o = 0; o < out; o++) {
        double g = dy[r * out + o];
        db[o] += g;
        for (int i = 0; i < in; i++) {
          dx[r * in + i] += g * w[o * in + i];
          dw[o * in + i] += g * x[r * in + i];
        }
      }
    }
    double tol = 2e-5;
    Accuracy.assertClose(serial.input(), LinearBackward.toFloat(dx), tol, "dx");
    Accuracy.assertClose(serial.parameters().get("weight").data(), LinearBackward.toFloat(dw),
        tol, "weight");
    Accuracy.assertClose(serial.parameters().get("bias").data(), LinearBackward.toFloat(db), tol,
        "bias");
  }

  private static float[] gaussian(Random rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }
}
