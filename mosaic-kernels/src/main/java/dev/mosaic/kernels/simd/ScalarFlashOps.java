package dev.mosaic.kernels.simd;

/** Plain Java loops: the fallback where the Vector API is absent or disabled. */
public final class ScalarFlashOps implements FlashOps {
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
  public void gemm(float[] a, int aOff, int aStride, int rows, int depth, float[] b, int bOff,
      int bStride, float[] c, int cOff, int cStride, int cols, boolean accumulate) {
    for (int r = 0; r < rows; r++) {
      int cRow = cOff + r * cStride;
      if (!accumulate) {
        java.util.Arrays.fill(c, cRow, cRow + cols, 0f);
      }
      int aRow = aOff + r * aStride;
      for (int k = 0; k < depth; k++) {
        float av = a[aRow + k];
        int bRow = bOff + k * bStride;
        for (int j = 0; j < cols; j++) {
          c[cRow + j] += av * b[bRow + j];
        }
      }
    }
  }

  @Override
  public void colMax(float[] a, int off, int stride, int rows, int cols, float[] m) {
    for (int r = 0; r < rows; r++) {
      int row = off + r * stride;
      for (int c = 0; c < cols; c++) {
        m[c] = Math.max(m[c], a[row + c]);
      }
    }
  }

  @Override
  public void exp2Columns(float[] a, int off, int stride, int rows, int cols, float[] shift,
      float[] sum) {
    for (int r = 0; r < rows; r++) {
      int row = off + r * stride;
      for (int c = 0; c < cols; c++) {
        float e = (float) Math.exp((a[row + c] - shift[c]) * LN2);
        a[row + c] = e;
        sum[c] += e;
      }
    }
  }

  @Override
  public boolean exp2ColumnsTrackingMax(float[] a, int off, int stride, int rows, int cols,
      float[] shift, float[] sum, float[] max, float slack) {
    boolean passed = false;
    for (int c = 0; c < cols; c++) {
      float entry = max[c];
      float mx = entry;
      float acc = sum[c];
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        mx = Math.max(mx, a[i]);
        float e = (float) Math.exp((a[i] - shift[c]) * LN2);
        a[i] = e;
        acc += e;
      }
      max[c] = mx;
      sum[c] = acc;
      passed |= mx > entry + slack;
    }
    return passed;
  }

  @Override
  public void scaleColumns(float[] a, int off, int stride, int rows, int cols, float[] f) {
    for (int r = 0; r < rows; r++) {
      int row = off + r * stride;
      for (int c = 0; c < cols; c++) {
        a[row + c] *= f[c];
      }
    }
  }

  @Override
  public void gelu(float[] x, int off, int n) {
    for (int i = off; i < off + n; i++) {
      x[i] = ErfPolynomial.gelu(x[i]);
    }
  }

  @Override
  public void geluBackward(float[] x, float[] dy, float[] dx, int n) {
    for (int i = 0; i < n; i++) {
      dx[i] = dy[i] * ErfPolynomial.geluDerivative(x[i]);
    }
  }
}
