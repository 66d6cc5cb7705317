package dev.mosaic.kernels;

import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;

/**
 * {@code y = x·Wᵀ + b} with PyTorch's {@code nn.Linear} layout: weight {@code [out, in]}, bias
 * {@code [out]}. The weight is stored transposed and padded to the vector width once, so the GEMM
 * broadcasts x and streams rows of Wᵀ.
 */
public final class Linear {
  private static final int ROW_BLOCK = 64;
  private final int in;
  private final int out;
  private final int outPad;
  private final float[] weightT;
  private final float[] bias;
  private final FlashOps ops = VectorizationProvider.ops();

  /** @param bias may be null */
  public Linear(Tensor weight, Tensor bias) {
    if (weight.rank() != 2) {
      throw new IllegalArgumentException("linear weight must be [out, in], got " + weight);
    }
    out = weight.dim(0);
    in = weight.dim(1);
    if (bias != null && (bias.rank() != 1 || bias.dim(0) != out)) {
      throw new IllegalArgumentException("linear bias must be [" + out + "], got " + bias);
    }
    outPad = CpuFlashAttention.roundUp(out, ops.lanes());
    weightT = new float[in * outPad];
    float[] w = weight.data();
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        weightT[i * outPad + o] = w[o * in + i];
      }
    }
    this.bias = new float[outPad];
    if (bias != null) {
      System.arraycopy(bias.data(), 0, this.bias, 0, out);
    }
  }

  public int inFeatures() {
    return in;
  }

  public int outFeatures() {
    return out;
  }

  /** Applies the layer to {@code rows} rows of {@code x} (row stride {@code in}). */
  public float[] forward(float[] x, int rows, Parallel parallel) {
    if ((long) rows * in > x.length) {
      throw new IllegalArgumentException(
          "input holds " + x.length + " values, " + rows + " rows of " + in + " need more");
    }
    float[] y = new float[Math.multiplyExact(rows, out)];
    int blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    parallel.forEach(blocks, blk -> {
      int r0 = blk * ROW_BLOCK;
      int n = Math.min(ROW_BLOCK, rows - r0);
      float[] tmp = new float[n * outPad];
      for (int r = 0; r < n; r++) {
        System.arraycopy(bias, 0, tmp, r * outPad, outPad);
      }
      ops.gemm(x, r0 * in, in, n, in, weightT, 0, outPad, tmp, 0, outPad, outPad, true);
      for (int r = 0; r < n; r++) {
        System.arraycopy(tmp, r * outPad, y, (r0 + r) * out, out);
      }
    });
    return y;
  }

  @Override
  public String toString() {
    return "Linear(" + in + " -> " + out + ")";
  }
}
