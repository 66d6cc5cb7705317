package dev.mosaic.kernels.grad;

/**
 * PyTorch's exact (erf) GELU, {@code x·Φ(x)}, and its derivative
 * {@code Φ(x) + x·φ(x)} with {@code φ(x) = e^{−x²/2}/√(2π)}, in double and rounded once.
 */
public final class GeluBackward {
  private static final double INV_SQRT2 = 1 / Math.sqrt(2);
  private static final double INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

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

  static double erf(double z) {
    return dev.mosaic.kernels.Erf.erf(z);
  }
}
