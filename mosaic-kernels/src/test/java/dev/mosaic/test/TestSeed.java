package dev.mosaic.test;

import java.security.SecureRandom;
import java.util.Random;

/**
 * The one seed that every test draws its random numbers from. Fixed, so that two runs of the same
 * tests see the same numbers; {@code -Dmosaic.test.seed=N} replays a run that used seed N, and
 * {@code -Dmosaic.test.seed=random} explores with a fresh one. {@link SeedOnFailure} adds it to
 * every failure, so a failed run says how to replay it.
 *
 * <p>A test that shares one generator between its methods draws in method order, so a replay runs
 * the whole class, as the failed run did.
 */
public final class TestSeed {
  /** The system property that replaces the fixed seed. */
  public static final String PROPERTY = "mosaic.test.seed";

  /** The fixed seed: any value, as long as it stays the same from run to run. */
  static final long FIXED = 20_240_611L;

  private static final long SEED = parse(System.getProperty(PROPERTY));

  private TestSeed() {}

  static long parse(String value) {
    if (value == null || value.isBlank()) {
      return FIXED;
    }
    if (value.strip().equals("random")) {
      return new SecureRandom().nextLong();
    }
    try {
      return Long.parseLong(value.strip());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          PROPERTY + ": expected a long or 'random', got '" + value + "'", e);
    }
  }

  /** This run's seed. */
  public static long get() {
    return SEED;
  }

  /** A generator seeded with this run's seed. */
  public static Random random() {
    return new Random(SEED);
  }

  /**
   * A seed of its own for one of several parties (a rank, a round, a shape) derived from
   * {@code seed}: different parties draw different numbers, and a replay draws the same ones.
   */
  public static long mix(long seed, long... parts) {
    long h = seed;
    for (long p : parts) {
      h = splitMix(h ^ splitMix(p));
    }
    return h;
  }

  /** SplitMix64's finaliser: a bijection that spreads every input bit over the output. */
  private static long splitMix(long z) {
    z += 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** How to replay: the line a failure carries. */
  public static String replayHint() {
    return "test seed " + SEED + " (replay: -D" + PROPERTY + "=" + SEED + ")";
  }
}
