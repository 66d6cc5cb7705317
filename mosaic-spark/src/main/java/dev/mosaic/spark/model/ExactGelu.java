package dev.mosaic.spark.model;

/**
 * PyTorch's default {@code F.gelu}: {@code x·Φ(x) = x/2·(1 + erf(x/√2))}. erf is computed in
 * double (the JDK has none) and rounded to float; the rest is float arithmetic in PyTorch's order,
 * so for negative x we round {@code 1 + erf} the way PyTorch does (it is ~1e-7 off the exact value
 * there, and matching it keeps the fixtures' comparison tight).
 */
public final class ExactGelu {
  private static final float INV_SQRT2 = (float) (1 / Math.sqrt(2));

  private ExactGelu() {}

  public static float apply(float x) {
    float erf = (float) erf(x * INV_SQRT2);
    return 0.5f * x * (1f + erf);
  }

  /** In place over the whole array. */
  public static void applyInPlace(float[] x) {
    for (int i = 0; i < x.length; i++) {
      x[i] = apply(x[i]);
    }
  }

  static double erf(double z) {
    return dev.mosaic.kernels.Erf.erf(z);
  }
}
