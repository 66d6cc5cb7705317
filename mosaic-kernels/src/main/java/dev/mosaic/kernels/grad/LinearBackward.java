package dev.mosaic.kernels.grad;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The backward of {@code y = x·Wᵀ + b} ({@link dev.mosaic.kernels.Linear}, PyTorch's
 * {@code nn.Linear} layout: weight {@code [out, in]}, bias {@code [out]}):
 * {@code dx = dy·W}, {@code dW = dyᵀ·x}, {@code db = Σ_rows dy}.
 *
 * <p>When {@code in} is a multiple of the vector width, both products run on the forward's fp32
 * GEMM ({@link FlashOps#gemm}), parallel over blocks of {@value #ROW_BLOCK} rows. A weight's
 * gradient adds one term per row, and there can be many rows, so each block sums its rows in fp32
 * and the blocks' partial sums are added in double, in block order (the result does not depend on
 * the thread count). Error model: a block's fp32 sum of k = {@value #ROW_BLOCK} terms is off by at
 * most about k·2⁻²⁴·Σ|terms| (≈ 1.5e-5 of Σ|terms|, typically √k·2⁻²⁴ ≈ 1e-6), the double sum
 * over blocks adds nothing measurable, and dx sums only {@code out} terms per entry. Other
 * widths (the 1-wide encoders) take a scalar path that sums in double.
 */
public final class LinearBackward {
  static final int ROW_BLOCK = 256;
  private static final int TRANSPOSE_ROWS = 16;
  private static final Parallel SERIAL = new Parallel(1, "mosaic-linear-backward");
  private static final FlashOps OPS = VectorizationProvider.ops();

  private LinearBackward() {}

  /** {@link #backward(float[], int, Tensor, boolean, float[], Parallel)} on the caller's thread. */
  public static Gradients backward(float[] x, int rows, Tensor weight, boolean hasBias,
      float[] dy) {
    return backward(x, rows, weight, hasBias, dy, SERIAL);
  }

  /**
   * @param x the forward's input, {@code rows × in}, row-major
   * @param weight {@code [out, in]}
   * @param hasBias whether the layer has a bias (a {@code bias} gradient is returned then)
   * @param dy the gradient of the loss with respect to y, {@code rows × out}
   * @param parallel the threads the row blocks are spread over
   */
  public static Gradients backward(float[] x, int rows, Tensor weight, boolean hasBias,
      float[] dy, Parallel parallel) {
    if (weight.rank() != 2) {
      throw new IllegalArgumentException("linear weight must be [out, in], got " + weight);
    }
    int out = weight.dim(0);
    int in = weight.dim(1);
    if ((long) rows * in != x.length) {
      throw new IllegalArgumentException("x must hold rows*in = " + rows + "*" + in + " values, got "
          + x.length);
    }
    if ((long) rows * out != dy.length) {
      throw new IllegalArgumentException("dy must hold rows*out = " + rows + "*" + out
          + " values, got " + dy.length);
    }
    float[] dx = new float[rows * in];
    double[] dw = new double[out * in];
    double[] db = new double[out];
    if (in % OPS.lanes() == 0) {
      gemmPath(x, rows, weight.data(), out, in, dy, dx, dw, db, parallel);
    } else {
      scalarPath(x, rows, weight.data(), out, in, dy, dx, dw, db);
    }
    Map<String, Tensor> params = new LinkedHashMap<>();
    params.put("weight", Tensor.of(toFloat(dw), out, in));
    if (hasBias) {
      params.put("bias", Tensor.of(toFloat(db), out));
    }
    return new Gradients(dx, params);
  }

  private static void gemmPath(float[] x, int rows, float[] w, int out, int in, float[] dy,
      float[] dx, double[] dw, double[] db, Parallel parallel) {
    int blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    float[][] partialW = new float[blocks][];
    float[][] partialB = new float[blocks][];
    parallel.forEach(blocks, blk -> {
      int r0 = blk * ROW_BLOCK;
      int n = Math.min(ROW_BLOCK, rows - r0);
      // dx rows of this block: dy[n × out] · W[out × in]
      OPS.gemm(dy, r0 * out, out, n, out, w, 0, in, dx, r0 * in, in, in, false);
      // dW partial: dyᵀ[out × n] · x[n × in]; the transpose also gives db's partial
      float[] dyT = new float[out * n];
      float[] pb = new float[out];
      // Transposed in slabs of TRANSPOSE_ROWS rows, whose lines stay in L1 while each output
      // row of dyT is written in order (row by row, every write was a cache miss).
      for (int s0 = 0; s0 < n; s0 += TRANSPOSE_ROWS) {
        int s1 = Math.min(n, s0 + TRANSPOSE_ROWS);
        for (int o = 0; o < out; o++) {
          float sum = pb[o];
          for (int r = s0, src = (r0 + s0) * out + o; r < s1; r++, src += out) {
            float g = dy[src];
            dyT[o * n + r] = g;
            sum += g;
          }
          pb[o] = sum;
        }
      }
      float[] pw = new float[out * in];
      OPS.gemm(dyT, 0, n, out, n, x, r0 * in, in, pw, 0, in, in, false);
      partialW[blk] = pw;
      partialB[blk] = pb;
    });
    for (int blk = 0; blk < blocks; blk++) {
      float[] pw = partialW[blk];
      for (int i = 0; i < pw.length; i++) {
        dw[i] += pw[i];
      }
      float[] pb = partialB[blk];
      for (int o = 0; o < out; o++) {
        db[o] += pb[o];
      }
    }
  }

  private static void scalarPath(float[] x, int rows, float[] w, int out, int in, float[] dy,
      float[] dx, double[] dw, double[] db) {
    double[] row = new double[in];
    for (int r = 0; r < rows; r++) {
      java.util.Arrays.fill(row, 0);
      for (int o = 0; o < out; o++) {
        double g = dy[r * out + o];
        db[o] += g;
        for (int i = 0; i < in; i++) {
          row[i] += g * w[o * in + i];
          dw[o * in + i] += g * x[r * in + i];
        }
      }
      for (int i = 0; i < in; i++) {
        dx[r * in + i] = (float) row[i];
      }
    }
  }

  static float[] toFloat(double[] a) {
    float[] f = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      f[i] = (float) a[i];
    }
    return f;
  }
}
