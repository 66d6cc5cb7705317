package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;

/**
 * nanoTabPFN's feature scaling: per column, the mean and population standard deviation of the
 * training rows only ({@link TableStats}); {@code (x − mean)/(std + 1e-5)}, a (near-)constant
 * column (std below 1e-5) divided by 1 instead, then clipped to [−100, 100] so an outlier test
 * value cannot blow up.
 */
public final class FeatureStandardizer {
  static final double MIN_STD = 1e-5;
  static final float CLIP = 100f;

  private FeatureStandardizer() {}

  /** A new {@code (rows, features)} table; the first {@code nTrain} rows give the statistics. */
  public static Tensor standardize(Tensor x, int nTrain) {
    float[] anyLabels = new float[nTrain];
    return standardize(x, TableStats.ofTrainRows(x, anyLabels));
  }

  /** A new {@code (rows, features)} table: any rows, scaled with the train rows' statistics. */
  public static Tensor standardize(Tensor x, TableStats stats) {
    int features = stats.features();
    if (x.rank() != 2 || x.dim(1) != features) {
      throw new IllegalArgumentException("x must be [rows, " + features + "] (the features the"
          + " statistics were computed on), got " + x);
    }
    int rows = x.dim(0);
    float[] in = x.data();
    float[] out = new float[in.length];
    float[] mean = stats.mean();
    float[] scale = stats.scale();
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < features; c++) {
        float v = (in[r * features + c] - mean[c]) / scale[c];
        out[r * features + c] = Math.max(-CLIP, Math.min(CLIP, v));
      }
    }
    return Tensor.of(out, rows, features);
  }

  /** The divisor for a population std: {@code std + 1e-5} in fp32, or 1 below 1e-5. */
  static float scale(double std) {
    return std < MIN_STD ? 1f : (float) ((float) std + (float) MIN_STD);
  }
}
