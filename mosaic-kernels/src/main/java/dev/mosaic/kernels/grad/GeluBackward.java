package dev.mosaic.kernels.grad;

/**
 * PyTorch's exact (erf) GELU, {@code x·Φ(x)}, and its derivative
 * {@code Φ(x) + x·φ(x)} with {@code φ(x) = e^{−x²/2}/√(2π)}, in double and rounded once.
 */
public final class GeluBackward {
  private static final double INV_SQRT2 = 1 / Math.sqrt(2);
  private static final double INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
  private static final double TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

  private GeluBackward() {}

  public static float forward(float x) {
    return (float) (0.5 * x * (1 + erf(x * INV_SQRT2)));
  }

  /** {@code dx = dy·GELU'(x)}, element by element. */
  public static float[] backward(float[] x, float[] dy) {
    if (dy.length != x.length) {
      throw new IllegalArgumentException("dy must hold " + x.length + " values like x, got "
          + dy.length);
    }
    float[] dx = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      dx[i] = (float) (dy[i] * derivative(x[i]));
    }
    return dx;
  }

  static double derivative(double x) {
    double cdf = 0.5 * (1 + erf(x * INV_SQRT2));
    return cdf + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
  }

  /**
   * erf(z) = 2/√π·e^{−z²}·Σ (2z²)ⁿ·z/(2n+1)!!: every term is positive, so there is no
   * cancellation; beyond |z| = 6, erf is ±1 to within 2e-17. (The model's {@code ExactGelu} uses
   * the same series; mosaic-kernels cannot see it.)
   */
  static double erf(double z) {
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
