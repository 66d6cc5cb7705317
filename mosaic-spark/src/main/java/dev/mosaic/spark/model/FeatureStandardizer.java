package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;

/**
 * nanoTabPFN's feature scaling: per column, the mean and population standard deviation of the
 * training rows only; {@code (x − mean)/(std + 1e-5)}, a (near-)constant column (std below 1e-5)
 * divided by 1 instead, then clipped to [−100, 100] so an outlier test value cannot blow up.
 */
public final class FeatureStandardizer {
  static final double MIN_STD = 1e-5;
  static final float CLIP = 100f;

  private FeatureStandardizer() {}

  /** A new {@code (rows, features)} table; the first {@code nTrain} rows give the statistics. */
  public static Tensor standardize(Tensor x, int nTrain) {
    int rows = x.dim(0);
    int features = x.dim(1);
    float[] in = x.data();
    float[] out = new float[in.length];
    for (int c = 0; c < features; c++) {
      double sum = 0;
      for (int r = 0; r < nTrain; r++) {
        sum += in[r * features + c];
      }
      float mean = (float) (sum / nTrain);
      double sq = 0;
      for (int r = 0; r < nTrain; r++) {
        double d = in[r * features + c] - (double) mean;
        sq += d * d;
      }
      double std = Math.sqrt(sq / nTrain);
      float scale = std < MIN_STD ? 1f : (float) ((float) std + (float) MIN_STD);
      for (int r = 0; r < rows; r++) {
        float v = (in[r * features + c] - mean) / scale;
        out[r * features + c] = Math.max(-CLIP, Math.min(CLIP, v));
      }
    }
    return Tensor.of(out, rows, features);
  }
}
