package dev.mosaic.kernels;

/** The error function in double (the JDK has none), shared by the exact GELU and its gradient. */
public final class Erf {
  private static final double TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

  private Erf() {}

  /**
   * erf(z) = 2/√π·e^{−z²}·Σ (2z²)ⁿ·z/(2n+1)!!: every term is positive, so there is no
   * cancellation; beyond |z| = 6, erf is ±1 to within 2e-17.
   */
  public static double erf(double z) {
    double a = Math.abs(z);
    if (a >= 6) {
      return Math.signum(z);
    }
    double twoZ2 = 2 * a * a;
    double term = a;
    double sum = a;
    for (int n = 1; term > 1e-17 * sum; n++) {
      term *= twoZ2 / (2 * n + 1);
      sum += term;
    }
    return Math.copySign(TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum, z);
  }
}
