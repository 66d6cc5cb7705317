package dev.mosaic.kernels;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * A fixed number of daemon worker threads for the compute loops of one kernel or layer. With one
 * thread everything runs on the caller. Close it to stop the threads.
 *
 * <p>When the body throws (for example {@link CancelledException}), the other workers take no new
 * index, {@link #forEach} waits until every worker has returned and then rethrows the first
 * failure: no worker is still writing into the caller's arrays, and the pool is ready for the next
 * call.
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
      return;
    }
    AtomicInteger next = new AtomicInteger();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Runnable worker = () -> {
      // Indices are handed out one at a time: each is a large piece of work (a head, a tile row).
      for (int i; failure.get() == null && (i = next.getAndIncrement()) < n; ) {
        try {
          body.accept(i);
        } catch (Throwable t) {
          failure.compareAndSet(null, t);
        }
      }
    };
    int workers = Math.min(threads, n);
    ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[workers];
    for (int w = 0; w < workers; w++) {
      tasks[w] = pool.submit(worker);
    }
    for (ForkJoinTask<?> t : tasks) {
      t.join(); // the worker catches everything, so this only waits
    }
    Throwable t = failure.get();
    if (t instanceof RuntimeException) {
      throw (RuntimeException) t;
    }
    if (t instanceof Error) {
      throw (Error) t;
    }
    if (t != null) {
      throw new IllegalStateException(t); // a checked exception thrown sneakily
    }
  }

  @Override
  public void close() {
    if (pool != null) {
      pool.shutdownNow();
    }
  }
}
