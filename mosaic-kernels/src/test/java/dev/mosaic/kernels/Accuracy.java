package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.fail;

/** Error measures shared by the tests: relative error in the L2 sense over a whole output. */
public final class Accuracy {
  private Accuracy() {}

  /** fp32's unit roundoff: one rounding moves a value by at most this much, relatively. */
  public static final double FP32_U = 0x1p-24;

  /**
   * The absolute error that fp32 leaves in attention scores whose largest magnitude is S, from the
   * error model the CPU and CUDA kernels share: fp32 holds a score of magnitude S only to within
   * S·u, and the kernels round each score a few times (the dot product's sum, the scale and
   * log2(e) products, the subtraction of the running max), the dot product's sum of d terms
   * adding up like a random walk. Eight such roundings bound it: over 300 seeds of the
   * large-score tests (scores to ~2·10⁴), the worst output error was under 1% of this term. That
   * margin is for the worst row, two near-tied top scores whose roundings line up.
   *
   * <p>An absolute error δ in the scores moves each softmax weight by a relative δ: the output, a
   * weighted mean of value rows, moves by about δ relative to them, and the lse by δ. So the
   * tests add this term to their usual bounds, where it matters only for scores in the thousands.
   */
  public static double scoreError(double maxAbsScore) {
    return 8 * maxAbsScore * FP32_U;
  }

  /**
   * The largest |scale · q·k| over every (query, key) pair of the same batch and head (the K head
   * a query head reads under grouped-query attention).
   */
  public static double maxAbsScore(BlockView q, BlockView k, float scale) {
    double max = 0;
    for (int b = 0; b < q.batch(); b++) {
      for (int h = 0; h < q.heads(); h++) {
        for (int i = 0; i < q.seq(); i++) {
          int qi = q.index(b, i, h);
          for (int j = 0; j < k.seq(); j++) {
            int kj = k.index(b, j, AttentionKernel.kvHead(h, q.heads(), k.heads()));
            double dot = 0;
            for (int c = 0; c < q.headDim(); c++) {
              dot += (double) q.data()[qi + c] * k.data()[kj + c];
            }
            max = Math.max(max, Math.abs(scale * dot));
          }
        }
      }
    }
    return max;
  }

  /** ||actual − expected||₂ / ||expected||₂; fails on NaN. */
  public static double relativeError(float[] actual, float[] expected) {
    double err = RelativeError.of(actual, expected);
    if (Double.isNaN(err)) {
      fail("NaN in the output");
    }
    return err;
  }

  public static void assertClose(float[] actual, float[] expected, double tol, String what) {
    double err = relativeError(actual, expected);
    if (!(err < tol)) {
      fail(what + ": relative error " + err + " >= " + tol);
    }
  }

  /**
   * Each log-sum-exp within {@code tol·max(1, |expected|) + extra} of the reference's; a fully
   * masked row's {@code -inf} must be {@code -inf} exactly (and NaN never passes).
   */
  public static void assertLseClose(float[] actual, float[] expected, double tol, double extra,
      String what) {
    if (actual.length != expected.length) {
      fail(what + ": " + actual.length + " log-sum-exps, expected " + expected.length);
    }
    for (int i = 0; i < expected.length; i++) {
      if (expected[i] == Float.NEGATIVE_INFINITY) {
        if (actual[i] != Float.NEGATIVE_INFINITY) {
          fail(what + " lse " + i + ": expected -Infinity, got " + actual[i]);
        }
      } else if (!(Math.abs(actual[i] - expected[i])
          <= tol * Math.max(1, Math.abs(expected[i])) + extra)) {
        fail(what + " lse " + i + ": expected " + expected[i] + ", got " + actual[i]);
      }
    }
  }
}
