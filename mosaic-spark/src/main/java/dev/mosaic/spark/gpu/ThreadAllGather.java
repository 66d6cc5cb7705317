package dev.mosaic.spark.gpu;

import java.time.Duration;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * {@code BarrierTaskContext.allGather} for ranks that are threads of one JVM (the self-test's NCCL
 * ring, tests): {@link #rank(int)} gives each thread its function; a round returns every rank's
 * string, indexed by rank, once all have called it.
 */
public final class ThreadAllGather {
  private final String[] slots;
  private final CyclicBarrier barrier;
  private final Duration timeout;
  private String[] result;

  public ThreadAllGather(int size, Duration timeout) {
    this.slots = new String[size];
    this.timeout = timeout;
    this.barrier = new CyclicBarrier(size, () -> result = slots.clone());
  }

  public Function<String, String[]> rank(int rank) {
    return message -> {
      slots[rank] = message;
      try {
        barrier.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        // Everyone has copied once all pass the second wait, so the next round may start.
        String[] all = result;
        barrier.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        return all;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("rank " + rank + " interrupted in allGather", e);
      } catch (BrokenBarrierException | TimeoutException e) {
        throw new IllegalStateException("allGather among " + slots.length + " threads failed"
            + " or timed out after " + timeout.toMillis() + " ms at rank " + rank, e);
      }
    };
  }
}
