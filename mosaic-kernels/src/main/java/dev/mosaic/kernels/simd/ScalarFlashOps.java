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
  public float max(float[] a, int off, int len) {
    float m = Float.NEGATIVE_INFINITY;
    for (int i = off; i < off + len; i++) {
      m = Math.max(m, a[i]);
    }
    return m;
  }

  @Override
  public float exp2Shifted(float[] a, int off, int len, float shift) {
    float sum = 0f;
    for (int i = off; i < off + len; i++) {
      float e = (float) Math.exp((a[i] - shift) * LN2);
      a[i] = e;
      sum += e;
    }
    return sum;
  }

  @Override
  public void scale(float[] a, int off, int len, float f) {
    for (int i = off; i < off + len; i++) {
      a[i] *= f;
    }
  }
}
