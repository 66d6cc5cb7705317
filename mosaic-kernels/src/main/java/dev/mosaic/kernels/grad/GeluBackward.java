package dev.mosaic.kernels.grad;

/**
 * PyTorch's exact (erf) GELU, {@code x·Φ(x)}, and its derivative
 * {@code Φ(x) + x·φ(x)} with {@code φ(x) = e^{−x²/2}/√(2π)}. {@link #backward} runs on the
 * chosen SIMD implementation in float (a few units in the last place from the derivative in
 * double, which {@link #derivative} keeps as the tests' oracle); it was the training step's
 * largest cost when it evaluated erf and exp in double per element.
 */
public final class GeluBackward {
  private static final double INV_SQRT2 = 1 / Math.sqrt(2);
  private static final double INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

  private static final dev.mosaic.kernels.simd.FlashOps OPS =
      dev.mosaic.kernels.simd.VectorizationProvider.ops();

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
    OPS.geluBackward(x, dy, dx, x.length);
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
