package dev.mosaic.kernels.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Ten independent FMA chains per thread hide the FMA latency; see {@link PeakFlops}. The hot loop
 * is its own method, called many times, so that C2 compiles it before the timed part.
 */
final class PanamaPeakFlops implements PeakFlops {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int CHAINS = 10;
  private static final int STEPS = 4096;

  @Override
  public double measure(int threads, long millis) {
    float[] state = new float[CHAINS * F.length()];
    for (int i = 0; i < 20_000; i++) {
      burst(state); // warm-up: get the loop compiled
    }
    return PeakFlops.runParallel(threads, () -> {
      float[] s = new float[CHAINS * F.length()];
      java.util.Arrays.fill(s, 1f);
      long end = System.nanoTime() + millis * 1_000_000L;
      long bursts = 0;
      while (System.nanoTime() < end) {
        for (int i = 0; i < 64; i++) {
          burst(s);
        }
        bursts += 64;
      }
      return bursts * STEPS * CHAINS * 2L * F.length();
    });
  }

  private static void burst(float[] s) {
    int l = F.length();
    FloatVector m = FloatVector.broadcast(F, 0.999999f);
    FloatVector c = FloatVector.broadcast(F, 1e-7f);
    FloatVector a0 = FloatVector.fromArray(F, s, 0);
    FloatVector a1 = FloatVector.fromArray(F, s, l);
    FloatVector a2 = FloatVector.fromArray(F, s, 2 * l);
    FloatVector a3 = FloatVector.fromArray(F, s, 3 * l);
    FloatVector a4 = FloatVector.fromArray(F, s, 4 * l);
    FloatVector a5 = FloatVector.fromArray(F, s, 5 * l);
    FloatVector a6 = FloatVector.fromArray(F, s, 6 * l);
    FloatVector a7 = FloatVector.fromArray(F, s, 7 * l);
    FloatVector a8 = FloatVector.fromArray(F, s, 8 * l);
    FloatVector a9 = FloatVector.fromArray(F, s, 9 * l);
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
    }
    a0.intoArray(s, 0);
    a1.intoArray(s, l);
    a2.intoArray(s, 2 * l);
    a3.intoArray(s, 3 * l);
    a4.intoArray(s, 4 * l);
    a5.intoArray(s, 5 * l);
    a6.intoArray(s, 6 * l);
    a7.intoArray(s, 7 * l);
    a8.intoArray(s, 8 * l);
    a9.intoArray(s, 9 * l);
  }
}
