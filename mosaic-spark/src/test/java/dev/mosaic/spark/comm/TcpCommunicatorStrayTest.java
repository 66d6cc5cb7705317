package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.Communicator.ReduceOp;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Anything may connect to a rank's listener while the mesh bootstraps: port scans, health probes,
 * junk, silent sockets, floods, impostors without the secret. They are dropped and the mesh still
 * builds; with no real peer, the deadline error says what was dropped.
 */
@Timeout(90)
class TcpCommunicatorStrayTest {

  /** Fixed: the random-bytes stray sends the same bytes every run. */
  private static final long SEED = 0x5EED_2024L;
  private static final CommConfig CONFIG =
      CommConfig.defaults().withTimeout(Duration.ofSeconds(20));
  private static final byte[] WRONG_SECRET = "not-the-job-secret".getBytes();

  @Test
  void meshBuildsWhileStraysHitEveryListener() throws Exception {
    int n = 4;
    try (Strays strays = new Strays()) {
      List<Socket> probes = new ArrayList<>();
      List<CompletableFuture<FakePeer>> impostors = new ArrayList<>();
      List<String> addresses = new ArrayList<>();
      List<Object> outcomes = Cluster.connectOutcomes(n, r -> CONFIG, r -> Cluster.SECRET,
          addresses, all -> unchecked(() -> {
            for (int r = 0; r < n - 1; r++) { // rank n-1 accepts nobody
              String a = all.get(r);
              strays.connectAndClose(a);
              probes.add(strays.httpGet(a));
              probes.add(strays.randomBytes(a, SEED + r));
              strays.silent(a);
              int target = r;
              impostors.add(background(() ->
                  FakePeer.connect(all, target, target + 1, WRONG_SECRET, CONFIG)));
            }
          }));
      try (Cluster cluster = Cluster.of(outcomes, addresses)) {
        checkExact(cluster);
      }
      for (Socket probe : probes) {
        assertTrue(Strays.hungUp(probe), "a stray was answered or kept: " + probe);
      }
      for (CompletableFuture<FakePeer> impostor : impostors) {
        ExecutionException e = assertThrows(ExecutionException.class,
            () -> impostor.get(30, TimeUnit.SECONDS), "an impostor got in");
        assertInstanceOf(Exception.class, e.getCause());
      }
    }
  }

  /**
   * More connections than {@link AcceptLoop#MAX_PENDING}, all silent and held open, arrive before
   * the real peers: the oldest silent ones make room, the real peers get in.
   */
  @Test
  void burstOf200SilentConnectionsDoesNotKeepPeersOut() throws Exception {
    int n = 3;
    try (Strays strays = new Strays()) {
      List<String> addresses = new ArrayList<>();
      List<Object> outcomes = Cluster.connectOutcomes(n, r -> CONFIG, r -> Cluster.SECRET,
          addresses, all -> unchecked(() -> {
            strays.burst(all.get(0), 200);
            strays.burst(all.get(1), 200);
          }));
      try (Cluster cluster = Cluster.of(outcomes, addresses)) {
        checkExact(cluster);
      }
    }
  }

  /**
   * A silent connection that got there first does not hold up the real peers: the handshakes run
   * side by side. With a 60 s timeout each handshake may take 10 s, which a one-at-a-time accept
   * would have waited out before taking the next connection.
   */
  @Test
  void silentStrayDoesNotHoldUpRealPeers() throws Exception {
    int n = 3;
    CommConfig patient = CommConfig.defaults().withTimeout(Duration.ofSeconds(60));
    try (Strays strays = new Strays()) {
      List<Socket> silent = new ArrayList<>();
      List<String> addresses = new ArrayList<>();
      long t0 = System.nanoTime();
      List<Object> outcomes = Cluster.connectOutcomes(n, r -> patient, r -> Cluster.SECRET,
          addresses, all -> unchecked(() -> {
            silent.add(strays.silent(all.get(0)));
            silent.add(strays.silent(all.get(1)));
          }));
      long millis = (System.nanoTime() - t0) / 1_000_000;
      try (Cluster cluster = Cluster.of(outcomes, addresses)) {
        assertTrue(millis < 10_000, "bootstrap took " + millis + " ms: it waited for the stray");
        checkExact(cluster);
      }
      for (Socket s : silent) {
        assertTrue(Strays.hungUp(s), "the silent stray was not closed when the mesh was built");
      }
    }
  }

  @Test
  void onlyStraysFailAtTheDeadlineNamingThem() throws Exception {
    CommConfig short4s = CommConfig.defaults().withTimeout(Duration.ofSeconds(4));
    TcpCommunicator.Listener l0 = TcpCommunicator.listen(InetAddress.getLoopbackAddress());
    TcpCommunicator.Listener l1 = TcpCommunicator.listen(InetAddress.getLoopbackAddress());
    List<String> addresses = List.of(l0.address(), l1.address());
    l1.close(); // rank 1 never comes
    CompletableFuture<TcpCommunicator> rank0 = background(
        () -> TcpCommunicator.connect(0, addresses, l0, Cluster.SECRET, short4s));
    try (Strays strays = new Strays()) {
      strays.connectAndClose(addresses.get(0));
      assertTrue(Strays.hungUp(strays.httpGet(addresses.get(0))));
      assertTrue(Strays.hungUp(strays.randomBytes(addresses.get(0), SEED)));
      CommException impostor = assertThrows(CommException.class,
          () -> FakePeer.connect(addresses, 0, 1, WRONG_SECRET, CONFIG));
      assertTrue(impostor.getMessage().contains("authentication failed"), impostor.getMessage());

      ExecutionException e = assertThrows(ExecutionException.class,
          () -> rank0.get(30, TimeUnit.SECONDS));
      String message = assertInstanceOf(CommException.class, e.getCause()).getMessage();
      String head = "connect: rank 0 (" + addresses.get(0) + ") waiting for rank 1 ("
          + addresses.get(1) + ") to connect: timed out after 4000 ms (CommConfig.timeout);"
          + " dropped 4 connections that failed the handshake: from 127.0.0.1:";
      assertTrue(message.startsWith(head), message);
      for (String part : new String[] {
          "claiming rank 1: authentication failed: it rejected this rank's proof",
          "closed the connection without sending anything",
          "not a Mosaic communicator (handshake magic 0x20544547, expected 0x3148534D)",
          "; and 1 more"}) {
        assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
      }
      assertFalse(message.contains("\n"), message);
      assertTrue(message.length() < 1_000, message.length() + " chars: " + message);
    } finally {
      rank0.thenAccept(TcpCommunicator::close);
    }
  }

  /** An exact allReduce and one ring step over the whole mesh. */
  private static void checkExact(Cluster cluster) throws Exception {
    int n = cluster.comms.size();
    cluster.run(comm -> {
      int r = comm.rank();
      float[] sum = Payloads.integers(SEED, r, 1001);
      comm.allReduce(sum, ReduceOp.SUM);
      float[] expected = new float[1001];
      for (int src = 0; src < n; src++) {
        float[] x = Payloads.integers(SEED, src, 1001);
        for (int i = 0; i < x.length; i++) {
          expected[i] += x[i];
        }
      }
      assertArrayEquals(expected, sum, "allReduce SUM of small integers is exact");
      float[] fromLeft = new float[4096];
      comm.sendRecv(Payloads.random(SEED, r, 4096), 0, 4096, (r + 1) % n, fromLeft, 0, 4096,
          (r + n - 1) % n).await();
      assertArrayEquals(Payloads.random(SEED, (r + n - 1) % n, 4096), fromLeft, "ring step");
      return null;
    });
    assertEquals(n, cluster.comms.size());
  }

  private interface IoAction {
    void run() throws IOException;
  }

  private static void unchecked(IoAction action) {
    try {
      action.run();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Runs {@code body} on its own daemon thread (the common pool may have one thread here). */
  private static <T> CompletableFuture<T> background(Callable<T> body) {
    CompletableFuture<T> result = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        result.complete(body.call());
      } catch (Throwable e) {
        result.completeExceptionally(e);
      }
    }, "test-background");
    t.setDaemon(true);
    t.start();
    return result;
  }
}
