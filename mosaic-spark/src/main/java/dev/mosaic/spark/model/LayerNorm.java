package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;

/** PyTorch's {@code nn.LayerNorm(E)} over the last axis: (x − mean)/√(var + eps)·γ + β. */
public final class LayerNorm {
  private static final float EPS = 1e-5f;
  private final float[] gamma;
  private final float[] beta;

  public LayerNorm(int dim) {
    gamma = new float[dim];
    beta = new float[dim];
    java.util.Arrays.fill(gamma, 1f);
  }

  /** Trained parameters: PyTorch's {@code weight} (γ) and {@code bias} (β), each {@code [dim]}. */
  public LayerNorm(float[] weight, float[] bias) {
    if (weight.length != bias.length) {
      throw new IllegalArgumentException("LayerNorm weight has " + weight.length
          + " values, bias " + bias.length + ": expected the same dim");
    }
    gamma = weight.clone();
    beta = bias.clone();
  }

  /** Normalises each row of {@code dim} values in place. */
  public void apply(float[] x) {
    int e = gamma.length;
    for (int off = 0; off < x.length; off += e) {
      double mean = 0;
      for (int i = 0; i < e; i++) {
        mean += x[off + i];
      }
      mean /= e;
      double var = 0;
      for (int i = 0; i < e; i++) {
        double d = x[off + i] - mean;
        var += d * d;
      }
      float inv = (float) (1 / Math.sqrt(var / e + EPS));
      for (int i = 0; i < e; i++) {
        x[off + i] = (float) (x[off + i] - mean) * inv * gamma[i] + beta[i];
      }
    }
  }

  /**
   * The post-norm residual step of a transformer block, {@code norm(x + delta)}, computed in
   * {@code delta}'s storage (which the caller hands over) and returned.
   */
  public Tensor residual(Tensor x, Tensor delta) {
    float[] a = x.data();
    float[] d = delta.data();
    for (int i = 0; i < a.length; i++) {
      d[i] += a[i];
    }
    apply(d);
    return delta;
  }
}
