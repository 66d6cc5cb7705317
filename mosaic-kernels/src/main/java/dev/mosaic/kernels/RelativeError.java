package dev.mosaic.kernels;

/**
 * {@code ‖actual − expected‖₂ / ‖expected‖₂} over whole arrays: the accuracy measure of the tests
 * and of {@code mosaic selftest}. A NaN anywhere in {@code actual} gives NaN, so it never passes a
 * {@code < tolerance} check.
 */
public final class RelativeError {
  private RelativeError() {}

  public static double of(float[] actual, float[] expected) {
    if (actual.length != expected.length) {
      throw new IllegalArgumentException(
          "lengths differ: " + actual.length + " vs " + expected.length);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < actual.length; i++) {
      if (Float.isNaN(actual[i])) {
        return Double.NaN;
      }
      double d = (double) actual[i] - expected[i];
      num += d * d;
      den += (double) expected[i] * expected[i];
    }
    return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
  }

  public static double of(Tensor actual, Tensor expected) {
    return of(actual.data(), expected.data());
  }
}
