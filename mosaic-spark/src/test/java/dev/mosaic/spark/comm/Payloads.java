package dev.mosaic.spark.comm;

import java.util.SplittableRandom;

/**
 * Reproducible random payloads: every rank can regenerate what any other rank sent from the
 * test's seed, which is fresh each run (printed on failure via the assertion messages).
 */
final class Payloads {

  private Payloads() {}

  /** Arbitrary bit patterns (subnormals, infinities, -0.0), but no NaN so equality is simple. */
  static float[] random(long seed, int a, int b, int len) {
    SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + a * 7919L + b);
    float[] out = new float[len];
    for (int i = 0; i < len; i++) {
      float f = Float.intBitsToFloat(rnd.nextInt());
      out[i] = Float.isNaN(f) ? -0.0f : f;
    }
    return out;
  }

  static float[] random(long seed, int a, int len) {
    return random(seed, a, 0, len);
  }

  /** Small integers: sums over ranks are exact in float32 whatever the order. */
  static float[] integers(long seed, int a, int len) {
    SplittableRandom rnd = new SplittableRandom(seed * 31 + a);
    float[] out = new float[len];
    for (int i = 0; i < len; i++) {
      out[i] = rnd.nextInt(-1000, 1001);
    }
    return out;
  }

  /** Ordinary finite values for MAX (and the tolerance check of a non-exact SUM). */
  static float[] gaussian(long seed, int a, int len) {
    java.util.Random rnd = new java.util.Random(seed * 17 + a);
    float[] out = new float[len];
    for (int i = 0; i < len; i++) {
      out[i] = (float) rnd.nextGaussian();
    }
    return out;
  }
}
