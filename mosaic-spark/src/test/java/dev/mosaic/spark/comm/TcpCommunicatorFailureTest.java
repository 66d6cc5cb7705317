package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.Communicator.ReduceOp;
import dev.mosaic.spark.comm.Communicator.Transfer;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;

/** Timeouts, dead peers, bad secrets, bad frames and clean shutdown. */
@Timeout(30)
class TcpCommunicatorFailureTest {

  private static final CommConfig SHORT = CommConfig.defaults().withTimeout(Duration.ofMillis(500));
  /** Long enough that "failed fast" clearly means the EOF was noticed, not the timeout. */
  private static final CommConfig LONG = CommConfig.defaults().withTimeout(Duration.ofSeconds(20));
  private static final long FAST_MS = 3_000;

  private static final float[] NONE = new float[0];

  /** Runs {@code op}, expects a CommException, returns it with the elapsed milliseconds. */
  private record Failure(CommException error, long millis) {
    String message() {
      return error.getMessage();
    }
  }

  private static Failure expectFailure(Executable op) {
    long t0 = System.nanoTime();
    CommException e = assertThrows(CommException.class, op);
    return new Failure(e, (System.nanoTime() - t0) / 1_000_000);
  }

  private static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message.contains(p), "expected '" + p + "' in: " + message);
    }
  }

  @Test
  void receiveWithNothingSentTimesOutNamingThePeer() throws Exception {
    try (Cluster cluster = Cluster.start(2, SHORT)) {
      CountDownLatch done = new CountDownLatch(1);
      cluster.run(comm -> {
        if (comm.rank() == 1) {
          assertTrue(done.await(20, TimeUnit.SECONDS)); // stays alive, sends nothing
          return null;
        }
        try {
          Failure f = expectFailure(
              () -> comm.sendRecv(NONE, 0, 0, 0, new float[5], 0, 5, 1).await());
          assertTrue(f.millis() >= 450 && f.millis() < FAST_MS, "took " + f.millis() + " ms");
          assertMentions(f.message(), "sendRecv", "timed out", "500 ms", "rank 1",
              cluster.addresses.get(1), "5 floats");

          Failure b = expectFailure(comm::barrier);
          assertMentions(b.message(), "barrier", "timed out", "500 ms", "rank 1",
              cluster.addresses.get(1));
        } finally {
          done.countDown();
        }
        return null;
      });
    }
  }

  @Test
  void peerClosingMidTransferFailsTheOtherSideFast() throws Exception {
    try (Cluster cluster = Cluster.start(2, LONG)) {
      CountDownLatch started = new CountDownLatch(1);
      cluster.run(comm -> {
        if (comm.rank() == 1) {
          assertTrue(started.await(20, TimeUnit.SECONDS));
          Thread.sleep(50);
          comm.close(); // vanishes while rank 0 still waits for its data
          return null;
        }
        int big = 4 << 20; // 16 MB each way
        Transfer t = comm.sendRecv(new float[big], 0, big, 1, new float[big], 0, big, 1);
        started.countDown();
        Failure f = expectFailure(t::await);
        assertTrue(f.millis() < FAST_MS, "took " + f.millis() + " ms, timeout is 20 s");
        assertMentions(f.message(), "rank 1", cluster.addresses.get(1));

        // Later operations with the dead peer fail at once too.
        Failure later = expectFailure(
            () -> comm.sendRecv(new float[3], 0, 3, 1, new float[3], 0, 3, 1).await());
        assertTrue(later.millis() < FAST_MS);
        assertMentions(later.message(), "rank 1", cluster.addresses.get(1));
        return null;
      });
    }
  }

  @Test
  void peerDyingInTheMiddleOfAFrameFailsFast() throws Exception {
    try (FakePeer.Pair pair = FakePeer.Pair.start(LONG)) {
      float[] recv = new float[1000];
      Transfer t = pair.real().sendRecv(NONE, 0, 0, 0, recv, 0, 1000, 1);
      pair.fake().sendHeader(0, 4000);
      pair.fake().sendRawBytes(400); // a tenth of the payload, then gone
      pair.fake().close();
      Failure f = expectFailure(t::await);
      assertTrue(f.millis() < FAST_MS, "took " + f.millis() + " ms");
      assertMentions(f.message(), "rank 1", pair.addresses().get(1), "mid-frame");
    }
  }

  @Test
  void frameAboveMaxFrameBytesIsRejectedBeforeAllocating() throws Exception {
    long[][] cases = {
        {1024, 1028}, // just over a small limit
        {CommConfig.DEFAULT_MAX_FRAME_BYTES, 1L << 40}, // 1 TiB: would blow the heap if trusted
    };
    for (long[] c : cases) {
      try (FakePeer.Pair pair = FakePeer.Pair.start(LONG.withMaxFrameBytes(c[0]))) {
        Transfer t = pair.real().sendRecv(NONE, 0, 0, 0, new float[4], 0, 4, 1);
        pair.fake().sendHeader(0, c[1]);
        Failure f = expectFailure(t::await);
        assertTrue(f.millis() < FAST_MS, "took " + f.millis() + " ms");
        assertMentions(f.message(), "maxFrameBytes " + c[0], String.valueOf(c[1]), "rank 1",
            pair.addresses().get(1));
      }
    }
  }

  @Test
  void frameOfTheWrongLengthFailsThatReceiveOnly() throws Exception {
    try (FakePeer.Pair pair = FakePeer.Pair.start(LONG)) {
      TcpCommunicator real = pair.real();
      // Posted before arrival: the network thread must check before reading into the array.
      float[] small = new float[4];
      Transfer t0 = real.sendRecv(NONE, 0, 0, 0, small, 0, 4, 1);
      pair.fake().sendFrame(0, new float[16]);
      Failure f = expectFailure(t0::await);
      assertMentions(f.message(), "expected 4 floats", "sent 16 floats", "rank 1");
      assertArrayEquals(new float[4], small);

      // The stream stays in step: the next frame is fine.
      pair.fake().sendFrame(1, new float[] {1, 2, 3});
      float[] ok = new float[3];
      real.sendRecv(NONE, 0, 0, 0, ok, 0, 3, 1).await();
      assertArrayEquals(new float[] {1, 2, 3}, ok);

      // Buffered before the receive is posted: checked when matched.
      pair.fake().sendFrame(2, new float[8]);
      Thread.sleep(100);
      Failure g = expectFailure(() -> real.sendRecv(NONE, 0, 0, 0, new float[3], 0, 3, 1).await());
      assertMentions(g.message(), "expected 3 floats", "sent 8 floats");
    }
  }

  /** The accepting side's deadline where a test waits for it: short, the tests wait it out. */
  private static final CommConfig ACCEPTOR = CommConfig.defaults()
      .withTimeout(Duration.ofSeconds(2));

  /**
   * The connector checks the acceptor's proof first, so it knows at once. The acceptor cannot
   * tell a misconfigured peer from a stranger, so it drops the connection and keeps waiting;
   * at its deadline the error quotes what it dropped.
   */
  @Test
  void wrongSecretFailsTheConnectorAtOnceAndTheAcceptorAtItsDeadline() throws Exception {
    List<String> addresses = new ArrayList<>();
    long t0 = System.nanoTime();
    List<Object> outcomes = Cluster.connectOutcomes(2, r -> r == 0 ? ACCEPTOR : LONG,
        r -> r == 1 ? "another-secret".getBytes() : Cluster.SECRET, addresses, all -> { });
    long millis = (System.nanoTime() - t0) / 1_000_000;
    for (Object o : outcomes) {
      if (o instanceof TcpCommunicator c) {
        c.close();
      }
    }
    assertTrue(millis < 2_000 + FAST_MS, "took " + millis + " ms, rank 1's timeout is 20 s");
    CommException acceptor = assertInstanceOf(CommException.class, outcomes.get(0));
    CommException connector = assertInstanceOf(CommException.class, outcomes.get(1));
    assertMentions(connector.getMessage(), "authentication failed", "rank 0", addresses.get(0));
    assertMentions(acceptor.getMessage(), "waiting for rank 1 (" + addresses.get(1) + ")",
        "timed out after 2000 ms", "dropped 1 connection", "claiming rank 1",
        "authentication failed", "rejected this rank's proof");
  }

  /** Bad rank claims are dropped like any stray, and named when the deadline comes. */
  @Test
  void outOfRangeAndDuplicateClaimsAreDroppedAndNamedAtTheDeadline() throws Exception {
    // Out of range: a 2-rank job, the peer claims rank 5.
    checkRejectedClaims(2, new int[] {5}, "claims rank 5, but only ranks 1..1 connect to rank 0");
    // Duplicate: a 3-rank job, two peers both claim rank 1; the first one is rank 1.
    checkRejectedClaims(3, new int[] {1, 1},
        "claims rank 1, which is already connected (duplicate rank)");
  }

  private void checkRejectedClaims(int size, int[] claims, String expected) throws Exception {
    List<TcpCommunicator.Listener> listeners = new ArrayList<>();
    List<String> addresses = new ArrayList<>();
    for (int r = 0; r < size; r++) {
      listeners.add(TcpCommunicator.listen(InetAddress.getLoopbackAddress()));
      addresses.add(listeners.get(r).address());
    }
    for (int r = 1; r < size; r++) {
      listeners.get(r).close(); // fakes never accept
    }
    CompletableFuture<TcpCommunicator> real = CompletableFuture.supplyAsync(
        () -> TcpCommunicator.connect(0, addresses, listeners.get(0), Cluster.SECRET, ACCEPTOR));
    List<FakePeer> fakes = new ArrayList<>();
    try {
      int rejected = 0;
      for (int claim : claims) {
        try {
          fakes.add(FakePeer.connect(addresses, 0, claim, Cluster.SECRET, LONG));
        } catch (CommException e) {
          rejected++;
          assertMentions(e.getMessage(), "rank 0", "closed the connection");
        }
      }
      assertEquals(1, rejected, "exactly the bad claim is turned away");
      Throwable e = assertThrows(Exception.class, () -> real.get(20, TimeUnit.SECONDS));
      CommException deadline = assertInstanceOf(CommException.class, e.getCause());
      assertMentions(deadline.getMessage(), "timed out after 2000 ms", "dropped 1 connection",
          expected);
    } finally {
      real.thenAccept(TcpCommunicator::close);
      for (FakePeer f : fakes) {
        f.close();
      }
    }
  }

  @Test
  void closeWakesWaitersAndLaterCallsFail() throws Exception {
    try (Cluster cluster = Cluster.start(2, LONG)) {
      TcpCommunicator comm = cluster.comms.get(0);
      Transfer t = comm.sendRecv(NONE, 0, 0, 0, new float[2], 0, 2, 1); // rank 1 never sends
      Thread closer = new Thread(() -> {
        sleep(100);
        comm.close();
      });
      closer.start();
      Failure f = expectFailure(t::await);
      assertTrue(f.millis() < FAST_MS, "took " + f.millis() + " ms");
      assertMentions(f.message(), "closed");
      closer.join();
      comm.close(); // idempotent
      assertMentions(expectFailure(comm::barrier).message(), "closed");
      assertMentions(expectFailure(() -> comm.allReduce(new float[1], ReduceOp.SUM)).message(),
          "closed");
      assertMentions(expectFailure(() -> comm.split(0, 0)).message(), "closed");
    }
  }

  @Test
  void closeStopsEveryThreadAndReleasesEveryPort() throws Exception {
    List<String> addresses;
    List<Thread> io = new ArrayList<>();
    List<Communicator> children;
    try (Cluster cluster = Cluster.start(3, LONG)) {
      addresses = cluster.addresses;
      children = cluster.run(comm -> {
        Communicator child = comm.split(comm.rank() % 2, 0);
        comm.allReduce(new float[10], ReduceOp.MAX);
        child.barrier();
        return child;
      });
      for (TcpCommunicator c : cluster.comms) {
        io.addAll(c.ioThreads());
      }
      assertEquals(3 * 2 * 2, io.size()); // 3 ranks x 2 peers x (sender, receiver)
      for (Thread t : io) {
        assertTrue(t.isAlive() && t.isDaemon() && t.getName().startsWith("mosaic-comm-"),
            t.getName());
      }
    }
    for (Thread t : io) {
      assertFalse(t.isAlive(), t.getName() + " still alive after close()");
    }
    for (Communicator child : children) {
      assertMentions(expectFailure(child::barrier).message(), "closed"); // closed with parent
    }
    List<String> leftovers = new ArrayList<>();
    for (Thread t : Thread.getAllStackTraces().keySet()) {
      if (t.isAlive() && t.getName().startsWith("mosaic-comm-")) {
        leftovers.add(t.getName());
      }
    }
    assertEquals(List.of(), leftovers, "mosaic-comm threads alive after every close()");
    for (String a : addresses) {
      PeerAddress p = PeerAddress.parse(a);
      try (Socket s = new Socket()) {
        assertThrows(ConnectException.class,
            () -> s.connect(new InetSocketAddress(p.host(), p.port()), 1000),
            "listener port " + a + " still open");
      }
    }
  }

  @Test
  void listenerBindsOnlyTheGivenAddress() throws Exception {
    assertThrows(IllegalArgumentException.class,
        () -> TcpCommunicator.listen(InetAddress.getByName("0.0.0.0")));
    try (TcpCommunicator.Listener l = TcpCommunicator.listen(InetAddress.getLoopbackAddress())) {
      assertTrue(l.address().startsWith("127.0.0.1:"), l.address());
      // Size 1: connect needs no peer and still closes the listener.
      try (TcpCommunicator solo =
          TcpCommunicator.connect(0, List.of(l.address()), l, Cluster.SECRET, SHORT)) {
        assertFalse(l.channel().isOpen());
        float[] x = {1, 2};
        solo.allReduce(x, ReduceOp.SUM);
        assertArrayEquals(new float[] {1, 2}, x);
      }
    }
  }

  @Test
  void peerAddressesParse() {
    assertEquals(new PeerAddress("10.1.2.3", 4000), PeerAddress.parse("10.1.2.3:4000"));
    assertEquals(new PeerAddress("::1", 4000), PeerAddress.parse("[::1]:4000"));
    assertEquals("[::1]:4000", PeerAddress.parse("[::1]:4000").toString());
    assertThrows(IllegalArgumentException.class, () -> PeerAddress.parse("nohost"));
    assertThrows(IllegalArgumentException.class, () -> PeerAddress.parse("h:notaport"));
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

}
