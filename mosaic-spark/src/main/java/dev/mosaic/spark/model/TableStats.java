package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;

/**
 * What nanoTabPFN's encoders learn from the training rows of one table: per feature column the
 * mean and the divisor of the standardisation ({@link FeatureStandardizer}), and the mean train
 * label that every test row's target cell gets. Computed once from all train rows — locally with
 * {@link #ofTrainRows}, or reduced across the tasks of a sharded run — and then applied to any
 * shard of rows, so a shard's encoding does not depend on which rows it holds.
 *
 * @param mean per feature, the train rows' mean (as PyTorch's fp32 mean)
 * @param scale per feature, {@code std + 1e-5}, or 1 where the population std is below 1e-5
 * @param labelMean the train labels' mean (the test rows' target value)
 * @param nTrain how many train rows these statistics came from
 */
public record TableStats(float[] mean, float[] scale, float labelMean, long nTrain) {
  public TableStats {
    if (mean.length != scale.length) {
      throw new IllegalArgumentException("mean has " + mean.length + " features, scale "
          + scale.length + ": expected the same count");
    }
    if (nTrain < 1) {
      throw new IllegalArgumentException("nTrain must be >= 1, got " + nTrain);
    }
  }

  /** The statistics of the first {@code yTrain.length} rows of {@code x} (the train rows). */
  public static TableStats ofTrainRows(Tensor x, float[] yTrain) {
    int nTrain = yTrain.length;
    if (x.rank() != 2 || x.dim(1) < 1) {
      throw new IllegalArgumentException("x must be [rows, features] with features >= 1, got "
          + x);
    }
    if (nTrain < 1 || nTrain > x.dim(0)) {
      throw new IllegalArgumentException("y_train has " + nTrain + " labels: expected 1.."
          + x.dim(0) + " (one per train row; x has " + x.dim(0) + " rows)");
    }
    int features = x.dim(1);
    float[] in = x.data();
    float[] mean = new float[features];
    float[] scale = new float[features];
    for (int c = 0; c < features; c++) {
      double sum = 0;
      for (int r = 0; r < nTrain; r++) {
        sum += in[r * features + c];
      }
      mean[c] = (float) (sum / nTrain);
      double sq = 0;
      for (int r = 0; r < nTrain; r++) {
        double d = in[r * features + c] - (double) mean[c];
        sq += d * d;
      }
      scale[c] = FeatureStandardizer.scale(Math.sqrt(sq / nTrain));
    }
    return new TableStats(mean, scale, labelMean(yTrain), nTrain);
  }

  /** The mean of the labels, which must be finite. */
  public static float labelMean(float[] yTrain) {
    double sum = 0;
    for (float y : yTrain) {
      if (!Float.isFinite(y)) {
        throw new IllegalArgumentException("y_train must be finite, got " + y);
      }
      sum += y;
    }
    return (float) (sum / yTrain.length);
  }

  public int features() {
    return mean.length;
  }
}
