package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.Communicator.Transfer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;

/**
 * An I/O thread that dies of something other than a lost peer (out of memory, a bug) fails the
 * whole communicator at once with the reason, and the peers learn why from its abort notice
 * instead of sitting out their timeout.
 */
@Timeout(60)
class TcpCommunicatorFatalErrorTest {

  /** Long, so that "failed fast" clearly means the abort was noticed, not the timeout. */
  private static final CommConfig LONG = CommConfig.defaults().withTimeout(Duration.ofSeconds(40));
  /** Generous for a starved machine, far below the timeout. */
  private static final long FAST_MS = 15_000;
  private static final long SEED = 7;
  private static final float[] NONE = new float[0];

  private static String expectFastFailure(Executable op) {
    long t0 = System.nanoTime();
    CommException e = assertThrows(CommException.class, op);
    long millis = (System.nanoTime() - t0) / 1_000_000;
    assertTrue(millis < FAST_MS, "took " + millis + " ms (timeout 40 s): " + e.getMessage());
    assertFalse(e.getMessage().contains("timed out"), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
    return e.getMessage();
  }

  private static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message.contains(p), "expected '" + p + "' in: " + message);
    }
  }

  @Test
  void outOfMemoryInAReceiverFailsEveryWaiterAndTellsEveryPeer() throws Exception {
    int n = 3;
    int floats = 1000;
    List<Thread> io = new ArrayList<>();
    try (Cluster cluster = Cluster.start(n, LONG)) {
      String rank0 = "rank 0 (" + cluster.addresses.get(0) + ")";
      String rank1 = "rank 1 (" + cluster.addresses.get(1) + ")";
      String reason = "rank 1: receiver thread failed: java.lang.OutOfMemoryError: Java heap space"
          + " while receiving a 3.9 KiB frame from " + rank0;
      CountDownLatch armed = new CountDownLatch(1);
      cluster.comms.forEach(c -> io.addAll(c.ioThreads()));
      cluster.run(comm -> {
        switch (comm.rank()) {
          case 1 -> {
            // The next frame from rank 0 "cannot be allocated".
            comm.injectIoFault(0, true, new OutOfMemoryError("Java heap space"));
            Transfer from2 = comm.sendRecv(NONE, 0, 0, 1, new float[7], 0, 7, 2); // never sent
            Transfer from0 = comm.sendRecv(NONE, 0, 0, 1, new float[floats], 0, floats, 0);
            armed.countDown();
            assertMentions(expectFastFailure(from0::await), "waiting for " + floats
                + " floats from " + rank0, reason);
            assertMentions(expectFastFailure(from2::await), "from rank 2", reason);
            assertMentions(expectFastFailure(comm::barrier), "barrier",
                "the communicator failed", reason);
          }
          case 0 -> {
            assertTrue(armed.await(30, TimeUnit.SECONDS));
            Transfer t = comm.sendRecv(Payloads.random(SEED, 0, floats), 0, floats, 1,
                new float[5], 0, 5, 1); // rank 1 never sends
            assertMentions(expectFastFailure(t::await), rank1 + " aborted: " + reason);
          }
          default -> {
            Transfer t = comm.sendRecv(NONE, 0, 0, 2, new float[5], 0, 5, 1);
            assertMentions(expectFastFailure(t::await), rank1 + " aborted: " + reason);
          }
        }
        return null;
      });
    }
    for (Thread t : io) {
      assertFalse(t.isAlive(), t.getName() + " still alive after the abort and close()");
    }
  }

  @Test
  void bugInASenderFailsTheCommunicatorAndThePeerLearnsWhy() throws Exception {
    try (Cluster cluster = Cluster.start(2, LONG)) {
      String rank0 = "rank 0 (" + cluster.addresses.get(0) + ")";
      String rank1 = "rank 1 (" + cluster.addresses.get(1) + ")";
      String reason = "rank 1: sender thread failed: java.lang.IllegalStateException: injected"
          + " bug while sending a 40 bytes frame to " + rank0;
      CountDownLatch aborted = new CountDownLatch(1);
      cluster.run(comm -> {
        if (comm.rank() == 1) {
          comm.injectIoFault(0, false, new IllegalStateException("injected bug"));
          Transfer t = comm.sendRecv(new float[10], 0, 10, 0, new float[10], 0, 10, 0);
          assertMentions(expectFastFailure(t::await), "sending 10 floats to " + rank0, reason);
          aborted.countDown();
        } else {
          Transfer t = comm.sendRecv(NONE, 0, 0, 0, new float[10], 0, 10, 1);
          assertMentions(expectFastFailure(t::await), rank1 + " aborted: " + reason);
          assertTrue(aborted.await(30, TimeUnit.SECONDS));
          // The connection stays failed: later operations with rank 1 fail at once.
          assertMentions(expectFastFailure(comm::barrier), rank1 + " aborted");
        }
        return null;
      });
    }
  }

  @Test
  void abortNoticesAreOneBoundedLine() throws Exception {
    try (FakePeer.Pair pair = FakePeer.Pair.start(LONG)) {
      Transfer t = pair.real().sendRecv(NONE, 0, 0, 0, new float[3], 0, 3, 1);
      char[] tail = new char[3000];
      Arrays.fill(tail, 'x');
      byte[] text = ("line one\nline two\r\n\u0000" + new String(tail))
          .getBytes(StandardCharsets.UTF_8);
      byte[] cut = Arrays.copyOf(text, FrameCodec.MAX_ABORT_BYTES);
      pair.fake().sendRawAbort(cut.length, cut);
      String message = expectFastFailure(t::await);
      assertMentions(message, "rank 1 (" + pair.addresses().get(1) + ") aborted: line one line two");
      assertTrue(message.length() < FrameCodec.MAX_ABORT_BYTES + 300, message.length() + " chars");
    }
  }

  @Test
  void abortNoticeAnnouncingTooMuchIsACorruptStream() throws Exception {
    try (FakePeer.Pair pair = FakePeer.Pair.start(LONG)) {
      Transfer t = pair.real().sendRecv(NONE, 0, 0, 0, new float[3], 0, 3, 1);
      pair.fake().sendRawAbort(1L << 40, new byte[0]); // would be 1 TiB if trusted
      assertMentions(expectFastFailure(t::await), "corrupt stream", "rank 1",
          "abort notice announces 1099511627776 bytes, at most 1024 allowed");
    }
  }

  @Test
  void writtenAbortNoticeReachesThePeerIntact() throws Exception {
    try (FakePeer.Pair pair = FakePeer.Pair.start(LONG)) {
      float[] got = new float[2];
      Transfer ok = pair.real().sendRecv(NONE, 0, 0, 0, got, 0, 2, 1);
      pair.fake().sendFrame(0, new float[] {4, 2});
      ok.await();
      assertArrayEquals(new float[] {4, 2}, got);
      Transfer t = pair.real().sendRecv(NONE, 0, 0, 0, new float[3], 0, 3, 1);
      pair.fake().sendAbort("rank 1: receiver thread failed: ünïcödé\nsecond line");
      assertMentions(expectFastFailure(t::await),
          "aborted: rank 1: receiver thread failed: ünïcödé second line");
    }
  }
}
