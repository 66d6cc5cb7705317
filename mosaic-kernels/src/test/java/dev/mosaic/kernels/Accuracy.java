package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.fail;

/** Error measures shared by the tests: relative error in the L2 sense over a whole output. */
public final class Accuracy {
  private Accuracy() {}

  /** ||actual − expected||₂ / max(||expected||₂, tiny). */
  public static double relativeError(float[] actual, float[] expected) {
    if (actual.length != expected.length) {
      throw new AssertionError("lengths differ: " + actual.length + " vs " + expected.length);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < actual.length; i++) {
      if (Float.isNaN(actual[i])) {
        fail("NaN at index " + i);
      }
      double d = (double) actual[i] - expected[i];
      num += d * d;
      den += (double) expected[i] * expected[i];
    }
    return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
  }

  public static void assertClose(float[] actual, float[] expected, double tol, String what) {
    double err = relativeError(actual, expected);
    if (!(err < tol)) {
      fail(what + ": relative error " + err + " >= " + tol);
    }
  }
}
