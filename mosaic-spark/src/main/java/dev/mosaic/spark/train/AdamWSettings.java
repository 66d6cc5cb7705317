package dev.mosaic.spark.train;

import java.io.Serializable;

/**
 * AdamW's constant hyper-parameters (the learning rate comes per step from a
 * {@link LearningRateSchedule}). PyTorch's defaults are {@code (0.9, 0.999, 1e-8, 0.01)}.
 */
public record AdamWSettings(double beta1, double beta2, double eps, double weightDecay)
    implements Serializable {
  public AdamWSettings {
    if (!(beta1 >= 0 && beta1 < 1)) {
      throw new IllegalArgumentException("beta1 must be in [0, 1), got " + beta1);
    }
    if (!(beta2 >= 0 && beta2 < 1)) {
      throw new IllegalArgumentException("beta2 must be in [0, 1), got " + beta2);
    }
    if (!(eps > 0)) {
      throw new IllegalArgumentException("eps must be > 0, got " + eps);
    }
    if (!(weightDecay >= 0)) {
      throw new IllegalArgumentException("weightDecay must be >= 0, got " + weightDecay);
    }
  }

  /** {@code torch.optim.AdamW}'s defaults. */
  public static AdamWSettings pytorchDefaults() {
    return new AdamWSettings(0.9, 0.999, 1e-8, 0.01);
  }
}
