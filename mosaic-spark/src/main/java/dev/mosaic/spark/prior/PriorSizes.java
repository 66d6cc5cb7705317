package dev.mosaic.spark.prior;

import java.io.Serializable;

/**
 * The range of sizes the prior draws from (the curriculum knob): rows uniform in
 * {@code minRows..maxRows}, features uniform in {@code 1..maxFeatures}, classes uniform in
 * {@code 2..maxClasses} (fewer when the table is too small to hold them).
 */
public record PriorSizes(int minRows, int maxRows, int maxFeatures, int maxClasses)
    implements Serializable {
  public PriorSizes {
    if (minRows < 4) {
      throw new IllegalArgumentException("minRows must be >= 4, got " + minRows);
    }
    if (maxRows < minRows) {
      throw new IllegalArgumentException("maxRows must be >= minRows " + minRows + ", got "
          + maxRows);
    }
    if (maxFeatures < 1) {
      throw new IllegalArgumentException("maxFeatures must be >= 1, got " + maxFeatures);
    }
    if (maxClasses < 2) {
      throw new IllegalArgumentException("maxClasses must be >= 2, got " + maxClasses);
    }
  }

  /** What the model will meet: 20..1000 rows, up to 30 features, up to 10 classes. */
  public static PriorSizes defaults() {
    return new PriorSizes(20, 1000, 30, 10);
  }

  /** A curriculum's start, as nanoTabPFN's own prior: small binary tables (50..150 rows, ≤ 5 features). */
  public static PriorSizes smallBinary() {
    return new PriorSizes(50, 150, 5, 2);
  }

  /**
   * The sizes a fraction {@code f} of the way from {@code this} to {@code end} (each bound
   * interpolated linearly and rounded; {@code f} clamped to [0, 1]), for a curriculum that grows
   * the tables over the steps of a run.
   */
  public PriorSizes towards(PriorSizes end, double f) {
    double t = Math.max(0, Math.min(1, f));
    int lo = lerp(minRows, end.minRows, t);
    return new PriorSizes(lo, Math.max(lo, lerp(maxRows, end.maxRows, t)),
        lerp(maxFeatures, end.maxFeatures, t), lerp(maxClasses, end.maxClasses, t));
  }

  private static int lerp(int a, int b, double t) {
    return (int) Math.round(a + (b - a) * t);
  }
}
