package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.CommException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class BoundedCallTest {

  @Test
  void returnsWhatTheCallReturns() {
    assertEquals(42, BoundedCall.run(() -> 42, Duration.ofSeconds(5), "answer", ""));
  }

  @Test
  void aCallThatNeverReturnsFailsAtTheTimeoutWithTheHint() throws InterruptedException {
    CountDownLatch never = new CountDownLatch(1);
    long t0 = System.nanoTime();
    CommException e = assertThrows(BoundedCall.TimedOut.class, () -> BoundedCall.run(() -> {
      never.await();
      return 0;
    }, Duration.ofMillis(300), "ncclCommInitRank(rank 1 of 2, GPU 0)", "a rank did not join"));
    double secs = (System.nanoTime() - t0) / 1e9;
    assertEquals("ncclCommInitRank(rank 1 of 2, GPU 0) did not finish within 300 ms: a rank did"
        + " not join", e.getMessage());
    assertTrue(secs >= 0.3 && secs < 10, "gave up after " + secs + " s");
    never.countDown(); // let the abandoned thread end
  }

  @Test
  void theCallsOwnFailureIsThrownAsIs() {
    IllegalStateException boom = new IllegalStateException("ncclInvalidUsage");
    assertSame(boom, assertThrows(IllegalStateException.class,
        () -> BoundedCall.run(() -> {
          throw boom;
        }, Duration.ofSeconds(5), "init", "")));
  }
}
