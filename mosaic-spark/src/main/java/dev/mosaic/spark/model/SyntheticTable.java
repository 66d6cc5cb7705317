package dev.mosaic.spark.model;

import java.util.Random;

/**
 * A synthetic classification table: standard-normal features, and a label from a random linear
 * rule with a little noise, cut into {@code classes} equally likely bins. The first {@code nTrain}
 * rows are the training rows.
 */
public record SyntheticTable(int rows, int features, int classes, float[] values, int[] labels) {

  /** The whole table in one JVM. Row r equals {@code Generator.row(r)} of the same seed. */
  public static SyntheticTable generate(int rows, int features, int classes, long seed) {
    Generator g = new Generator(features, classes, seed);
    float[] values = new float[Math.multiplyExact(rows, features)];
    int[] labels = new int[rows];
    for (int r = 0; r < rows; r++) {
      labels[r] = g.row(r, values, r * features);
    }
    return new SyntheticTable(rows, features, classes, values, labels);
  }

  /**
   * Makes any row on its own from (seed, row id), so Spark tasks can generate their rows in
   * parallel and still agree with {@link #generate}.
   */
  public static final class Generator implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    private final int features;
    private final int classes;
    private final long seed;
    private final double[] rule;
    private final double norm;

    public Generator(int features, int classes, long seed) {
      this.features = features;
      this.classes = classes;
      this.seed = seed;
      Random rnd = new Random(seed);
      rule = new double[features];
      double n = 0;
      for (int f = 0; f < features; f++) {
        rule[f] = rnd.nextGaussian();
        n += rule[f] * rule[f];
      }
      norm = Math.sqrt(n + 0.09);
    }

    /** Writes row {@code id}'s features to {@code out[off..]} and returns its label. */
    public int row(long id, float[] out, int off) {
      Random rnd = new Random(seed * 0x9E3779B97F4A7C15L + id);
      double s = 0;
      for (int f = 0; f < features; f++) {
        float v = (float) rnd.nextGaussian();
        out[off + f] = v;
        s += rule[f] * v;
      }
      s += 0.3 * rnd.nextGaussian();
      // Cut at the quantiles of the score's distribution: classes come out equally likely.
      double u = 0.5 * (1 + erf(s / norm / Math.sqrt(2)));
      return Math.min(classes - 1, (int) (u * classes));
    }
  }

  /** Abramowitz–Stegun 7.1.26, good to 1.5e-7: enough to cut bins. */
  static double erf(double x) {
    double t = 1 / (1 + 0.3275911 * Math.abs(x));
    double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t * Math.exp(-x * x);
    return x >= 0 ? y : -y;
  }
}
