package dev.mosaic.spark.model;

import dev.mosaic.kernels.simd.VectorizationProvider;

/**
 * PyTorch's default {@code F.gelu}: {@code x·Φ(x) = x/2·(1 + erf(x/√2))}, in PyTorch's order of
 * operations (for negative x, {@code 1 + erf} is rounded as PyTorch rounds it).
 * {@link #applyInPlace} is the fast path, a SIMD float erf within a few units in the last place
 * ({@code FlashOps.gelu}); {@link #apply} is the reference, erf in double rounded to float.
 */
public final class ExactGelu {
  private static final float INV_SQRT2 = (float) (1 / Math.sqrt(2));

  private ExactGelu() {}

  /** The reference: erf in double ({@link dev.mosaic.kernels.Erf}), rounded to float. */
  public static float apply(float x) {
    float erf = (float) dev.mosaic.kernels.Erf.erf(x * INV_SQRT2);
    return 0.5f * x * (1f + erf);
  }

  /** In place over the whole array, with the chosen SIMD (or scalar) ops. */
  public static void applyInPlace(float[] x) {
    VectorizationProvider.ops().gelu(x, 0, x.length);
  }
}
