package dev.mosaic.spark.datasets;

import java.util.List;

/**
 * A classification table in memory: {@code x} row-major {@code (rows, features)}, class ids
 * {@code y} in {@code 0..classes−1}.
 */
public record LabeledTable(String name, List<String> featureNames, float[] x, int[] y,
    int classes) {
  public int rows() {
    return y.length;
  }

  public int features() {
    return featureNames.size();
  }
}
