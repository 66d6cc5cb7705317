package dev.mosaic.kernels.simd;

final class ScalarPeakFlops implements PeakFlops {
  @Override
  public double measure(int threads, long millis) {
    return PeakFlops.bestOfWindows(threads, millis, window -> {
      float a0 = 1, a1 = 1, a2 = 1, a3 = 1, a4 = 1, a5 = 1, a6 = 1, a7 = 1;
      float m = 0.999999f;
      float c = 1e-7f;
      long end = System.nanoTime() + window * 1_000_000L;
      long iters = 0;
      while (System.nanoTime() < end) {
        for (int i = 0; i < 10_000; i++) {
          a0 = Math.fma(a0, m, c);
          a1 = Math.fma(a1, m, c);
          a2 = Math.fma(a2, m, c);
          a3 = Math.fma(a3, m, c);
          a4 = Math.fma(a4, m, c);
          a5 = Math.fma(a5, m, c);
          a6 = Math.fma(a6, m, c);
          a7 = Math.fma(a7, m, c);
        }
        iters += 10_000;
      }
      if (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 == 42f) {
        System.out.print("");
      }
      return iters * 8 * 2;
    });
  }
}
