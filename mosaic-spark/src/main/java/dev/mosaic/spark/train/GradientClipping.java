package dev.mosaic.spark.train;

import dev.mosaic.kernels.Tensor;
import java.util.Collection;

/** {@code torch.nn.utils.clip_grad_norm_} with the L2 norm over all gradients together. */
public final class GradientClipping {
  private GradientClipping() {}

  /**
   * Scales every gradient in place by {@code min(1, maxNorm / (norm + 1e-6))}, where {@code norm}
   * is the L2 norm of all of them as one vector, as PyTorch does.
   *
   * @return the norm before clipping (NaN or infinite if a gradient is)
   */
  public static double clipGlobalNorm(Collection<Tensor> grads, double maxNorm) {
    if (!(maxNorm > 0)) {
      throw new IllegalArgumentException("maxNorm must be > 0, got " + maxNorm);
    }
    double norm = globalNorm(grads);
    float coef = (float) Math.min(1.0, maxNorm / (norm + 1e-6));
    if (coef < 1f) {
      for (Tensor g : grads) {
        float[] d = g.data();
        for (int i = 0; i < d.length; i++) {
          d[i] *= coef;
        }
      }
    }
    return norm;
  }

  /** The L2 norm of all gradients as one vector (accumulated in double). */
  public static double globalNorm(Collection<Tensor> grads) {
    double sum = 0;
    for (Tensor g : grads) {
      for (float v : g.data()) {
        sum += (double) v * v;
      }
    }
    return Math.sqrt(sum);
  }
}
