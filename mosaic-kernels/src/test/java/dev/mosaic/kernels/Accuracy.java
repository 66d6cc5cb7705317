package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.fail;

/** Error measures shared by the tests: relative error in the L2 sense over a whole output. */
public final class Accuracy {
  private Accuracy() {}

  /** ||actual − expected||₂ / ||expected||₂; fails on NaN. */
  public static double relativeError(float[] actual, float[] expected) {
    double err = RelativeError.of(actual, expected);
    if (Double.isNaN(err)) {
      fail("NaN in the output");
    }
    return err;
  }

  public static void assertClose(float[] actual, float[] expected, double tol, String what) {
    double err = relativeError(actual, expected);
    if (!(err < tol)) {
      fail(what + ": relative error " + err + " >= " + tol);
    }
  }
}
