package dev.mosaic.spark.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * The accept phase of the bootstrap: until every higher rank has authenticated, one thread runs
 * one selector over the server socket and every connection whose handshake is in progress. Any
 * process may connect to a listener (a port scan, a health probe, a stale task of an earlier
 * attempt), so a connection that fails its handshake is closed, logged and counted, and the loop
 * keeps waiting; only the deadline ends it, with a message that quotes what was dropped.
 *
 * <p>Bounds: each handshake has {@link #handshakeNanos} from its accept; at most {@link
 * #MAX_PENDING} handshakes are in progress, and when that many are, the oldest connection that
 * has sent nothing for a while is closed to make room; while none qualifies, new connections stay
 * in the kernel's backlog (bounded by the OS) and cost this process nothing. A real peer sends
 * its hello as soon as it connects, so it is never the silent one for long.
 *
 * <p>The deadline is {@code config.timeout()} from the start and is renewed each time a higher
 * rank authenticates, as before: a slow start of many ranks is progress, a stray is not.
 */
final class AcceptLoop {

  static final int MAX_PENDING = 64;
  private static final long MIN_HANDSHAKE_NANOS = 1_000_000_000L;
  private static final long MAX_HANDSHAKE_NANOS = 10_000_000_000L;
  /** Quoted missing ranks in the timeout message; a 1000-rank job must not print them all. */
  private static final int MISSING_SHOWN = 8;

  private final int rank;
  private final int size;
  private final SocketChannel[] channels;
  private final Handshake handshake;
  private final CommConfig config;
  private final IntFunction<String> describe;
  private final long handshakeNanos;
  private final long evictSilentNanos;
  private final DropLog drops;
  private final Map<SelectionKey, AcceptorSession> pending = new LinkedHashMap<>(); // by age

  /**
   * {@code channels} receives each authenticated higher rank's channel (blocking mode once
   * {@link #run} returns); {@code describe} names a rank for messages.
   */
  AcceptLoop(int rank, SocketChannel[] channels, Handshake handshake, CommConfig config,
      IntFunction<String> describe) {
    this.rank = rank;
    this.size = channels.length;
    this.channels = channels;
    this.handshake = handshake;
    this.config = config;
    this.describe = describe;
    long timeout = config.timeout().toNanos();
    this.handshakeNanos = Math.min(timeout,
        Math.min(MAX_HANDSHAKE_NANOS, Math.max(MIN_HANDSHAKE_NANOS, timeout / 4)));
    this.evictSilentNanos = handshakeNanos / 10;
    this.drops = new DropLog(describe.apply(rank));
  }

  /** Accepts until every higher rank is connected; throws {@link CommException} at the deadline. */
  void run(ServerSocketChannel server) throws IOException {
    try (Selector selector = Selector.open()) {
      server.configureBlocking(false);
      SelectionKey acceptKey = server.register(selector, SelectionKey.OP_ACCEPT);
      long deadline = System.nanoTime() + config.timeout().toNanos();
      while (missing() > 0) {
        long now = System.nanoTime();
        expireHandshakes(now);
        if (now - deadline >= 0) {
          throw new CommException(waiting() + ": " + config.timedOut() + drops.summary());
        }
        boolean room = pending.size() < MAX_PENDING || evictable(now) != null;
        acceptKey.interestOps(room ? SelectionKey.OP_ACCEPT : 0);
        selector.select(millisUntil(nextWake(deadline, now, room), now));
        // Handshakes first: a peer whose hello just arrived must not look silent to an eviction.
        boolean acceptable = selector.selectedKeys().remove(acceptKey);
        for (SelectionKey key : selector.selectedKeys()) {
          if (key.isValid() && step(key)) {
            deadline = System.nanoTime() + config.timeout().toNanos();
          }
        }
        selector.selectedKeys().clear();
        if (acceptable) {
          acceptReady(server, selector);
        }
      }
    } finally {
      for (AcceptorSession s : pending.values()) {
        closeQuietly(s.channel()); // still mid-handshake when the mesh completed or failed
      }
      pending.clear();
    }
    // The selector is closed, so the keys are gone and blocking mode may be restored.
    for (int r = rank + 1; r < size; r++) {
      channels[r].configureBlocking(true);
    }
  }

  /** "rank 0 (host:port) waiting for rank 2 (host:port), rank 3 (host:port) to connect". */
  private String waiting() {
    List<String> missing = new ArrayList<>();
    int count = 0;
    for (int r = rank + 1; r < size; r++) {
      if (channels[r] == null && count++ < MISSING_SHOWN) {
        missing.add(describe.apply(r));
      }
    }
    String more = count > MISSING_SHOWN ? " and " + (count - MISSING_SHOWN) + " more" : "";
    return "connect: " + describe.apply(rank) + " waiting for " + String.join(", ", missing)
        + more + " to connect";
  }

  private int missing() {
    int n = 0;
    for (int r = rank + 1; r < size; r++) {
      if (channels[r] == null) {
        n++;
      }
    }
    return n;
  }

  private void acceptReady(ServerSocketChannel server, Selector selector) throws IOException {
    while (true) {
      long now = System.nanoTime();
      SelectionKey victim = pending.size() < MAX_PENDING ? null : evictable(now);
      if (pending.size() >= MAX_PENDING && victim == null) {
        return; // the rest waits in the backlog until a handshake ends or goes quiet
      }
      SocketChannel ch = server.accept();
      if (ch == null) {
        return;
      }
      if (victim != null) {
        drop(victim, new AcceptorSession.Dropped("sent nothing while " + MAX_PENDING
            + " handshakes were pending; closed to make room", false));
      }
      admit(ch, selector, now);
    }
  }

  private void admit(SocketChannel ch, Selector selector, long now) {
    String remote = "an unknown address";
    try {
      remote = format(ch.getRemoteAddress());
      ch.setOption(StandardSocketOptions.TCP_NODELAY, true); // small frames (barriers) go at once
      ch.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
      ch.configureBlocking(false);
      SelectionKey key = ch.register(selector, SelectionKey.OP_READ);
      pending.put(key, new AcceptorSession(handshake, ch, remote, now));
    } catch (IOException e) {
      closeQuietly(ch); // reset before we could even look at it
      drops.add(remote, "the connection failed as it was accepted: " + e.getMessage(), false);
    }
  }

  /** Advances one handshake; true if it just authenticated a rank (now in {@code channels}). */
  private boolean step(SelectionKey key) {
    AcceptorSession session = pending.get(key);
    if (session == null) {
      return false;
    }
    try {
      int ops = session.advance(this::rankProblem);
      if (ops != 0) {
        key.interestOps(ops);
        return false;
      }
      String problem = rankProblem(session.rank()); // two in flight for the same rank
      if (problem != null) {
        throw new AcceptorSession.Dropped("claiming rank " + session.rank() + ": " + problem,
            true);
      }
      pending.remove(key);
      key.cancel();
      channels[session.rank()] = session.channel();
      return true;
    } catch (AcceptorSession.Dropped d) {
      drop(key, d);
      return false;
    }
  }

  /** Only higher ranks connect to this one, each once; null if {@code claimed} may. */
  private String rankProblem(int claimed) {
    if (claimed <= rank || claimed >= size) {
      return "but only ranks " + (rank + 1) + ".." + (size - 1) + " connect to rank " + rank;
    }
    if (channels[claimed] != null) {
      return "which is already connected (duplicate rank)";
    }
    return null;
  }

  private void expireHandshakes(long now) {
    List<SelectionKey> late = new ArrayList<>();
    for (Map.Entry<SelectionKey, AcceptorSession> e : pending.entrySet()) {
      if (now - e.getValue().acceptedNanos() >= handshakeNanos) {
        late.add(e.getKey());
      }
    }
    for (SelectionKey key : late) {
      drop(key, pending.get(key).timedOut(handshakeNanos / 1_000_000));
    }
  }

  /** The oldest session that has been silent long enough to give up on, or null. */
  private SelectionKey evictable(long now) {
    for (Map.Entry<SelectionKey, AcceptorSession> e : pending.entrySet()) {
      AcceptorSession s = e.getValue();
      if (s.silent() && now - s.acceptedNanos() >= evictSilentNanos) {
        return e.getKey();
      }
    }
    return null;
  }

  /** The earliest of: the deadline, a handshake expiring, a silent session becoming evictable. */
  private long nextWake(long deadline, long now, boolean room) {
    long wake = deadline;
    for (AcceptorSession s : pending.values()) {
      wake = earlier(wake, s.acceptedNanos() + handshakeNanos);
      if (!room && s.silent()) {
        wake = earlier(wake, s.acceptedNanos() + evictSilentNanos);
      }
    }
    return wake;
  }

  private void drop(SelectionKey key, AcceptorSession.Dropped why) {
    AcceptorSession session = pending.remove(key);
    closeQuietly(session.channel()); // also cancels the key
    drops.add(session.remote(), why.getMessage(), why.speaksMosaic());
  }

  /** "10.0.0.7:5555" ("[::1]:5555"), without InetSocketAddress's leading slash. */
  private static String format(SocketAddress address) {
    if (address instanceof InetSocketAddress a && a.getAddress() != null) {
      return PeerAddress.of(a.getAddress(), a.getPort()).toString();
    }
    return String.valueOf(address);
  }

  private static long earlier(long a, long b) {
    return a - b <= 0 ? a : b;
  }

  /** At least 1: select(0) would wait forever. */
  private static long millisUntil(long when, long now) {
    return Math.max(1, (when - now + 999_999) / 1_000_000);
  }

  private static void closeQuietly(SocketChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // Dropping it is all we wanted.
    }
  }
}
