package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The double-precision reference backward and the fp32 kernel against central finite differences
 * of {@code L = Σ O∘dO}, computed in double on tiny shapes, with the masks of the forward.
 * Central differences with step h have error O(h²·L''') plus rounding O(ε·L/h); h = 1e-5 keeps
 * both near 1e-10, far below the 1e-7 that the reference's rounding to fp32 leaves.
 */
class AttentionBackwardFiniteDifferenceTest {
  private static final double H = 1e-5;
  private static final Random SEEDS = TestSeed.random();

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 2, 3})
  void gradientsMatchFiniteDifferences(int maskKind) {
    Random rnd = new Random(TestSeed.mix(SEEDS.nextLong(), maskKind));
    int b = 2;
    int nq = 5;
    int nk = 7;
    int h = 2;
    int d = 3;
    AttentionMask mask = switch (maskKind) {
      case 0 -> AttentionMask.NONE;
      case 1 -> AttentionMask.causalMask();
      case 2 -> AttentionMask.causalMask().at(1, 3); // query 0 and 1 see nothing
      default -> new AttentionMask(false, 0, 0, 4);
    };
    float scale = 0.7f;
    Tensor q = Tensor.randn(rnd, 1f, b, nq, h, d);
    Tensor k = Tensor.randn(rnd, 1f, b, nk, h, d);
    Tensor v = Tensor.randn(rnd, 1f, b, nk, h, d);
    Tensor dOut = Tensor.randn(rnd, 1f, b, nq, h, d);
    Loss loss = new Loss(q, k, v, dOut, scale, mask);
    double[][] fd = {loss.finiteDifference(0), loss.finiteDifference(1),
        loss.finiteDifference(2)};

    Tensor[] ref = {Tensor.zeros(q.shape()), Tensor.zeros(k.shape()), Tensor.zeros(k.shape())};
    ReferenceAttentionBackward.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
        BlockView.of(dOut), scale, mask, BlockView.of(ref[0]), BlockView.of(ref[1]),
        BlockView.of(ref[2]));
    Tensor[] fast = {Tensor.zeros(q.shape()), Tensor.zeros(k.shape()), Tensor.zeros(k.shape())};
    Tensor out = Tensor.zeros(q.shape());
    float[] lse = new float[b * nq * h];
    try (CpuFlashAttention fwd = new CpuFlashAttention(1);
        CpuFlashAttentionBackward bwd = new CpuFlashAttentionBackward(2)) {
      fwd.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(out), lse);
      bwd.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v), BlockView.of(out), lse,
          BlockView.of(dOut), scale, mask, BlockView.of(fast[0]), BlockView.of(fast[1]),
          BlockView.of(fast[2]), false);
    }
    String[] names = {"dq", "dk", "dv"};
    for (int g = 0; g < 3; g++) {
      // the reference: double, rounded once to fp32 (relative 2^-24 per element)
      assertClose(ref[g].data(), fd[g], 1e-6, "reference " + names[g]);
      // the kernel: fp32 throughout; tiny sums, so its bound is the error model's floor
      assertClose(fast[g].data(), fd[g],
          CpuFlashAttentionBackwardTest.tolerance(nq, nk, d, 10), "kernel " + names[g]);
    }
  }

  private static void assertClose(float[] actual, double[] expected, double tol, String what) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < expected.length; i++) {
      num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
      den += expected[i] * expected[i];
    }
    double err = Math.sqrt(num / den);
    assertTrue(err < tol, what + ": relative error " + err + " >= " + tol);
  }

  /** L = Σ O∘dO in double, with any one input perturbed. */
  private static final class Loss {
    final double[][] x; // q, k, v
    final double[] dOut;
    final int b;
    final int nq;
    final int nk;
    final int h;
    final int d;
    final double scale;
    final AttentionMask mask;

    Loss(Tensor q, Tensor k, Tensor v, Tensor dOut, float scale, AttentionMask mask) {
      x = new double[][] {toDouble(q.data()), toDouble(k.data()), toDouble(v.data())};
      this.dOut = toDouble(dOut.data());
      b = q.dim(0);
      nq = q.dim(1);
      nk = k.dim(1);
      h = q.dim(2);
      d = q.dim(3);
      this.scale = scale;
      this.mask = mask;
    }

    double[] finiteDifference(int which) {
      double[] g = new double[x[which].length];
      for (int i = 0; i < g.length; i++) {
        double keep = x[which][i];
        x[which][i] = keep + H;
        double up = value();
        x[which][i] = keep - H;
        double down = value();
        x[which][i] = keep;
        g[i] = (up - down) / (2 * H);
      }
      return g;
    }

    double value() {
      double total = 0;
      double[] s = new double[nk];
      for (int bb = 0; bb < b; bb++) {
        for (int hh = 0; hh < h; hh++) {
          for (int i = 0; i < nq; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < nk; j++) {
              double dot = 0;
              for (int c = 0; c < d; c++) {
                dot += x[0][at(bb, i, hh, c, nq)] * x[1][at(bb, j, hh, c, nk)];
              }
              s[j] = mask.masks(i, j) ? Double.NEGATIVE_INFINITY : scale * dot;
              max = Math.max(max, s[j]);
            }
            if (max == Double.NEGATIVE_INFINITY) {
              continue; // output 0
            }
            double sum = 0;
            for (int j = 0; j < nk; j++) {
              s[j] = Math.exp(s[j] - max);
              sum += s[j];
            }
            for (int c = 0; c < d; c++) {
              double o = 0;
              for (int j = 0; j < nk; j++) {
                o += s[j] / sum * x[2][at(bb, j, hh, c, nk)];
              }
              total += o * dOut[at(bb, i, hh, c, nq)];
            }
          }
        }
      }
      return total;
    }

    private int at(int bb, int row, int hh, int c, int rows) {
      return ((bb * rows + row) * h + hh) * d + c;
    }
  }

  private static double[] toDouble(float[] a) {
    double[] r = new double[a.length];
    for (int i = 0; i < a.length; i++) {
      r[i] = a[i];
    }
    return r;
  }
}
