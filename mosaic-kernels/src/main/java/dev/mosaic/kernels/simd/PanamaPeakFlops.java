package dev.mosaic.kernels.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Twelve independent FMA chains per thread: an FMA unit takes a new FMA every cycle but its result
 * comes 4 (Intel) to 5 (some AMD) cycles later, and x86 cores have two such units, so at least
 * latency × pipes = 8–10 chains must be in flight; 12 leaves slack and, with the two constants,
 * still fits AVX2's 16 vector registers (AVX-512 has 32). The C loop in docs/performance.md with
 * 12 chains reaches the same figure. See {@link PeakFlops}. The hot loop is its own method, called
 * many times, so that C2 compiles it before the timed part.
 */
final class PanamaPeakFlops implements PeakFlops {
  private static final VectorSpecies<Float> F = PanamaSpecies.FLOAT;
  private static final int L = F.length();
  static final int CHAINS = 12;
  private static final int STEPS = 4096;

  @Override
  public double measure(int threads, long millis) {
    float[] state = new float[CHAINS * L];
    for (int i = 0; i < 20_000; i++) {
      burst(state); // warm-up: get the loop compiled
    }
    return PeakFlops.bestOfWindows(threads, millis, window -> {
      float[] s = new float[CHAINS * L];
      java.util.Arrays.fill(s, 1f);
      long end = System.nanoTime() + window * 1_000_000L;
      long bursts = 0;
      while (System.nanoTime() < end) {
        for (int i = 0; i < 16; i++) {
          burst(s);
        }
        bursts += 16;
      }
      return bursts * STEPS * CHAINS * 2L * L;
    });
  }

  private static void burst(float[] s) {
    FloatVector m = FloatVector.broadcast(F, 0.999999f);
    FloatVector c = FloatVector.broadcast(F, 1e-7f);
    FloatVector a0 = FloatVector.fromArray(F, s, 0 * L);
    FloatVector a1 = FloatVector.fromArray(F, s, 1 * L);
    FloatVector a2 = FloatVector.fromArray(F, s, 2 * L);
    FloatVector a3 = FloatVector.fromArray(F, s, 3 * L);
    FloatVector a4 = FloatVector.fromArray(F, s, 4 * L);
    FloatVector a5 = FloatVector.fromArray(F, s, 5 * L);
    FloatVector a6 = FloatVector.fromArray(F, s, 6 * L);
    FloatVector a7 = FloatVector.fromArray(F, s, 7 * L);
    FloatVector a8 = FloatVector.fromArray(F, s, 8 * L);
    FloatVector a9 = FloatVector.fromArray(F, s, 9 * L);
    FloatVector a10 = FloatVector.fromArray(F, s, 10 * L);
    FloatVector a11 = FloatVector.fromArray(F, s, 11 * L);
    for (int i = 0; i < STEPS; i++) {
      a0 = a0.fma(m, c);
      a1 = a1.fma(m, c);
      a2 = a2.fma(m, c);
      a3 = a3.fma(m, c);
      a4 = a4.fma(m, c);
      a5 = a5.fma(m, c);
      a6 = a6.fma(m, c);
      a7 = a7.fma(m, c);
      a8 = a8.fma(m, c);
      a9 = a9.fma(m, c);
      a10 = a10.fma(m, c);
      a11 = a11.fma(m, c);
    }
    a0.intoArray(s, 0 * L);
    a1.intoArray(s, 1 * L);
    a2.intoArray(s, 2 * L);
    a3.intoArray(s, 3 * L);
    a4.intoArray(s, 4 * L);
    a5.intoArray(s, 5 * L);
    a6.intoArray(s, 6 * L);
    a7.intoArray(s, 7 * L);
    a8.intoArray(s, 8 * L);
    a9.intoArray(s, 9 * L);
    a10.intoArray(s, 10 * L);
    a11.intoArray(s, 11 * L);
  }
}
