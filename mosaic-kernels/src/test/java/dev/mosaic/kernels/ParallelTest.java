package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** {@link Parallel#forEach}: every index once; on a failure, nothing left running. */
class ParallelTest {

  @Test
  void runsEveryIndexOnce() {
    for (int threads : new int[] {1, 2, 3}) {
      try (Parallel p = new Parallel(threads, "test")) {
        for (int n : new int[] {0, 1, 2, 7, 1000}) {
          AtomicInteger[] seen = new AtomicInteger[n];
          for (int i = 0; i < n; i++) {
            seen[i] = new AtomicInteger();
          }
          p.forEach(n, i -> seen[i].incrementAndGet());
          for (int i = 0; i < n; i++) {
            assertEquals(1, seen[i].get(), "threads " + threads + ", n " + n + ", index " + i);
          }
        }
      }
    }
  }

  /**
   * Index 0 throws while another worker is inside index 1 (it waits for the throw): {@code
   * forEach} rethrows that same exception only after every started index has finished, and the
   * pool works for the next call.
   */
  @Test
  void failureWaitsForTheOtherWorkersAndIsRethrownAsIs() throws InterruptedException {
    try (Parallel p = new Parallel(2, "test")) {
      for (int round = 0; round < 20; round++) {
        CountDownLatch thrown = new CountDownLatch(1);
        AtomicInteger started = new AtomicInteger();
        AtomicInteger finished = new AtomicInteger();
        CancelledException boom = new CancelledException("round " + round);
        CancelledException e = assertThrows(CancelledException.class, () -> p.forEach(1000, i -> {
          if (i == 0) {
            thrown.countDown();
            throw boom;
          }
          started.incrementAndGet();
          try {
            assertTrue(thrown.await(60, TimeUnit.SECONDS), "index 0 never threw");
          } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
          }
          finished.incrementAndGet();
        }));
        assertSame(boom, e);
        assertEquals(started.get(), finished.get(), "a worker was still running");

        AtomicLong sum = new AtomicLong();
        p.forEach(100, i -> sum.addAndGet(i));
        assertEquals(4950, sum.get());
      }
    }
  }

  @Test
  void errorsPropagateToo() {
    try (Parallel p = new Parallel(2, "test")) {
      AssertionError boom = new AssertionError("boom");
      assertSame(boom, assertThrows(AssertionError.class, () -> p.forEach(10, i -> {
        throw boom;
      })));
    }
  }
}
