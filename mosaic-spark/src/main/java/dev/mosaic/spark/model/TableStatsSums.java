package dev.mosaic.spark.model;

/**
 * {@link TableStats} from sums that a distributed aggregation (a Spark {@code treeAggregate}, in
 * double) computed over the train rows, with the same formulas as {@link TableStats#ofTrainRows}:
 * first the per-feature sums give the fp32 means; then the sums of squared deviations from those
 * fp32 means give the population std.
 */
public final class TableStatsSums {
  private TableStatsSums() {}

  /** Per feature, {@code (float) (sum / nTrain)}: the mean the deviations are taken from. */
  public static float[] means(long nTrain, double[] sums) {
    if (nTrain < 1) {
      throw new IllegalArgumentException("nTrain must be >= 1, got " + nTrain);
    }
    float[] mean = new float[sums.length];
    for (int c = 0; c < sums.length; c++) {
      mean[c] = (float) (sums[c] / nTrain);
    }
    return mean;
  }

  /**
   * @param squaredDeviations per feature, {@code Σ (x − mean)²} with {@code mean} from
   *     {@link #means}, summed in double
   * @param labelSum the train labels' sum, in double
   */
  public static TableStats of(long nTrain, double[] sums, double[] squaredDeviations,
      double labelSum) {
    if (squaredDeviations.length != sums.length) {
      throw new IllegalArgumentException("squaredDeviations has " + squaredDeviations.length
          + " features, sums " + sums.length + ": expected the same count");
    }
    float[] scale = new float[sums.length];
    for (int c = 0; c < sums.length; c++) {
      scale[c] = FeatureStandardizer.scale(Math.sqrt(squaredDeviations[c] / nTrain));
    }
    return new TableStats(means(nTrain, sums), scale, (float) (labelSum / nTrain), nTrain);
  }
}
