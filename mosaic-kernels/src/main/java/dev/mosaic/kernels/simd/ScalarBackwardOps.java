package dev.mosaic.kernels.simd;

/** Plain Java loops: the fallback where the Vector API is absent or disabled. */
public final class ScalarBackwardOps implements BackwardOps {
  private static final double LN2 = Math.log(2);

  @Override
  public String name() {
    return "scalar";
  }

  @Override
  public int lanes() {
    return 1;
  }

  @Override
  public void probabilities(float[] a, int off, int stride, int rows, int cols, float[] lse2) {
    for (int r = 0; r < rows; r++) {
      int row = off + r * stride;
      for (int c = 0; c < cols; c++) {
        // exp(-inf) = 0 covers both masked scores and +inf log-sum-exps.
        a[row + c] = (float) Math.exp((a[row + c] - lse2[c]) * LN2);
      }
    }
  }

  @Override
  public void softmaxGrad(float[] p, float[] dp, int off, int stride, int rows, int cols,
      float[] d) {
    for (int r = 0; r < rows; r++) {
      int row = off + r * stride;
      for (int c = 0; c < cols; c++) {
        dp[row + c] = p[row + c] * (dp[row + c] - d[c]);
      }
    }
  }
}
