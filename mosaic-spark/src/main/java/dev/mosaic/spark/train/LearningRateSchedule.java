package dev.mosaic.spark.train;

import java.io.Serializable;

/**
 * A linear warm-up to {@code peak}, then a cosine decay to {@code min} at {@code totalSteps}:
 * step {@code t} (0-based) gets {@code peak·(t+1)/warmup} while {@code t < warmup}, then
 * {@code min + (peak − min)·(1 + cos(π·(t − warmup)/(totalSteps − warmup)))/2}. This is what
 * PyTorch's {@code SequentialLR([LinearLR(start_factor=1/W, total_iters=W−1),
 * CosineAnnealingLR(T_max=total−W, eta_min=min)], milestones=[W])} gives; steps past the end stay
 * at {@code min}. {@code warmup = 0} starts the cosine at once.
 */
public record LearningRateSchedule(double peak, int warmupSteps, long totalSteps, double min)
    implements Serializable {
  public LearningRateSchedule {
    if (!(peak > 0)) {
      throw new IllegalArgumentException("peak learning rate must be > 0, got " + peak);
    }
    if (!(min >= 0 && min <= peak)) {
      throw new IllegalArgumentException("min learning rate must be in [0, peak " + peak
          + "], got " + min);
    }
    if (warmupSteps < 0 || warmupSteps >= totalSteps) {
      throw new IllegalArgumentException("warmupSteps must be in 0.." + (totalSteps - 1)
          + " (below totalSteps " + totalSteps + "), got " + warmupSteps);
    }
  }

  /** The learning rate of step {@code step} (0-based). */
  public double at(long step) {
    if (step < 0) {
      throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
    if (step < warmupSteps) {
      return peak * (step + 1) / warmupSteps;
    }
    if (step >= totalSteps) {
      return min;
    }
    double t = (double) (step - warmupSteps) / (totalSteps - warmupSteps);
    return min + (peak - min) * (1 + Math.cos(Math.PI * t)) / 2;
  }
}
