package dev.mosaic.kernels.simd;

/**
 * Measures what this machine's FMA units deliver from Java on {@code threads} threads: a loop of
 * independent fused multiply-adds on registers, no memory traffic. The ceiling the kernel is
 * compared with in benchmarks. The result is the best of several short windows: on a shared
 * machine a window that another process interrupted says nothing about the hardware, and the
 * ceiling is what the best window shows.
 */
public interface PeakFlops {

  /** FLOP/s (2 per FMA lane) over all threads, measured for about {@code millis} ms. */
  double measure(int threads, long millis);

  /** The SIMD measurement where the Vector API is loaded, else a scalar one. */
  static PeakFlops get() {
    if (VectorizationProvider.ops().lanes() > 1) {
      try {
        return (PeakFlops) Class.forName("dev.mosaic.kernels.simd.PanamaPeakFlops")
            .getDeclaredConstructor().newInstance();
      } catch (ReflectiveOperationException e) {
        throw new IllegalStateException("cannot load the SIMD peak measurement", e);
      }
    }
    return new ScalarPeakFlops();
  }

  /** Windows per measurement: the best one counts. */
  int WINDOWS = 5;

  /**
   * Splits {@code millis} into {@value #WINDOWS} windows, runs {@code body} (given the window's
   * length in ms, returning FLOPs done) on {@code threads} threads in each, returns the best rate.
   */
  static double bestOfWindows(int threads, long millis,
      java.util.function.LongUnaryOperator body) {
    long window = Math.max(1, millis / WINDOWS);
    double best = 0;
    for (int w = 0; w < WINDOWS; w++) {
      best = Math.max(best, runParallel(threads, () -> body.applyAsLong(window)));
    }
    return best;
  }

  /** Runs {@code body} on {@code threads} threads at once, returns total FLOPs / elapsed seconds. */
  static double runParallel(int threads, java.util.function.LongSupplier body) {
    long[] flops = new long[threads];
    Thread[] ts = new Thread[threads];
    long start = System.nanoTime();
    for (int i = 0; i < threads; i++) {
      int idx = i;
      ts[i] = new Thread(() -> flops[idx] = body.getAsLong(), "mosaic-peak-" + i);
      ts[i].start();
    }
    long total = 0;
    for (int i = 0; i < threads; i++) {
      try {
        ts[i].join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      total += flops[i];
    }
    return total / ((System.nanoTime() - start) / 1e9);
  }
}
