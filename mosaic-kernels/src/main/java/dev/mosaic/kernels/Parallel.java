package dev.mosaic.kernels;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * A fixed number of daemon worker threads for the compute loops of one kernel or layer. With one
 * thread everything runs on the caller. Close it to stop the threads.
 */
public final class Parallel implements AutoCloseable {
  private final int threads;
  private final ForkJoinPool pool;

  public Parallel(int threads, String name) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.threads = threads;
    this.pool = threads == 1 ? null : new ForkJoinPool(threads, p -> {
      ForkJoinWorkerThread t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
      t.setName(name + "-" + t.getPoolIndex());
      t.setDaemon(true);
      return t;
    }, null, false);
  }

  public int threads() {
    return threads;
  }

  /** Runs {@code body(i)} for i in [0, n), spread over the threads; returns when all are done. */
  public void forEach(int n, IntConsumer body) {
    if (pool == null || n <= 1) {
      for (int i = 0; i < n; i++) {
        body.accept(i);
      }
    } else {
      pool.submit(() -> IntStream.range(0, n).parallel().forEach(body)).join();
    }
  }

  @Override
  public void close() {
    if (pool != null) {
      pool.shutdownNow();
    }
  }
}
