package dev.mosaic.spark.prior;

import dev.mosaic.kernels.Tensor;
import java.util.Arrays;

/**
 * One classification table from the prior: {@code x} row-major {@code (rows, features)}, the
 * class ids {@code y} ({@code 0..classes−1}), the first {@code nTrain} rows the train rows. Every
 * class occurs among the train rows, so {@code classes = max(yTrain) + 1}, as nanoTabPFN counts.
 *
 * @param kind which generator drew it ({@code "mlp"} or {@code "trees"}), for diagnostics
 */
public record PriorDataset(float[] x, float[] y, int rows, int features, int classes, int nTrain,
    String kind) {
  /** The features as a {@code (rows, features)} tensor (shares the array). */
  public Tensor xTensor() {
    return Tensor.of(x, rows, features);
  }

  /** The train rows' labels. */
  public float[] yTrain() {
    return Arrays.copyOf(y, nTrain);
  }

  /** The test rows' labels. */
  public float[] yTest() {
    return Arrays.copyOfRange(y, nTrain, rows);
  }
}
