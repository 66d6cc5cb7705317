package dev.mosaic.spark.comm;

import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The fully connected set of authenticated connections of one rank, shared by the root
 * communicator and all communicators split from it. Indexed by mesh rank (the root's ranks);
 * this rank's own slot is a local {@link Mailbox} so that send-to-self is a plain copy.
 *
 * <p>A peer that goes away fails only its own connection. An I/O thread that fails for any other
 * reason (out of memory, a bug) {@linkplain #abort aborts} the whole mesh: a rank that lost a
 * frame cannot go on, so every local waiter fails at once with the reason, and every peer gets an
 * abort notice saying why this rank is leaving before its socket closes.
 */
final class Mesh {

  private static final System.Logger LOG = System.getLogger(Mesh.class.getName());
  /** How long close() waits for each I/O thread; they end as soon as their socket closes. */
  private static final long JOIN_MILLIS = 5_000;
  /** How long an abort waits for the senders to write their notices before closing anyway. */
  private static final long ABORT_GRACE_NANOS = 2_000_000_000L;

  private final int rank;
  private final List<PeerAddress> addresses;
  private final PeerConnection[] peers; // null at [rank]
  private final Mailbox self = new Mailbox();
  private final CommConfig config;
  private volatile boolean closed;
  private volatile CommException failure; // set once by abort()

  private Mesh(int rank, List<PeerAddress> addresses, int size, CommConfig config) {
    this.rank = rank;
    this.addresses = List.copyOf(addresses);
    this.peers = new PeerConnection[size];
    this.config = config;
  }

  /**
   * Wraps every authenticated channel (null at {@code rank}) in a {@link PeerConnection} and
   * starts its threads.
   */
  static Mesh open(int rank, List<PeerAddress> addresses, SocketChannel[] channels,
      CommConfig config) {
    Mesh mesh = new Mesh(rank, addresses, channels.length, config);
    for (int r = 0; r < channels.length; r++) {
      if (r != rank) {
        mesh.peers[r] = new PeerConnection(rank, r, addresses.get(r), channels[r], config,
            mesh::abort);
      }
    }
    for (PeerConnection p : mesh.peers) {
      if (p != null) {
        p.start(); // after the array is complete: Thread.start publishes it
      }
    }
    return mesh;
  }

  int rank() {
    return rank;
  }

  int size() {
    return peers.length;
  }

  CommConfig config() {
    return config;
  }

  boolean isClosed() {
    return closed;
  }

  /** Why an I/O thread aborted the mesh, or null. */
  CommException failure() {
    return failure;
  }

  PeerConnection connection(int meshRank) {
    return peers[meshRank];
  }

  Mailbox mailbox(int meshRank) {
    return meshRank == rank ? self : peers[meshRank].mailbox();
  }

  /** "rank 3 (10.0.0.7:41234)", or "rank 0 (self, ...)" for this rank. */
  String describe(int meshRank) {
    return meshRank == rank
        ? "rank " + rank + " (self, " + addresses.get(rank) + ")"
        : peers[meshRank].name();
  }

  /**
   * Sends a frame with its payload as {@code wire}; to self it is copied into the local mailbox
   * right away, exactly (nothing crosses a wire, so nothing is rounded).
   */
  CompletableFuture<Void> send(int meshRank, FrameKey key, float[] data, int off, int len,
      WireDtype wire) {
    if (meshRank == rank) {
      self.deliverCopy(key, data, off, len);
      return CompletableFuture.completedFuture(null);
    }
    SendJob job = new SendJob(key, data, off, len, wire);
    peers[meshRank].send(job);
    return job.done();
  }

  List<Thread> threads() {
    List<Thread> all = new ArrayList<>();
    for (PeerConnection p : peers) {
      if (p != null) {
        all.addAll(p.threads());
      }
    }
    return all;
  }

  /**
   * This rank is broken ({@code reason} says how): fails every waiter and later operation with
   * it, tells every peer (best effort, bounded by {@link #ABORT_GRACE_NANOS}) and closes every
   * socket. Called on the I/O thread that failed. Only the first call (or a close) counts.
   */
  void abort(CommException reason) {
    synchronized (this) {
      if (closed || failure != null) {
        return;
      }
      failure = reason;
    }
    // One line: the stack stays in reason's cause, which the failed operations rethrow.
    LOG.log(System.Logger.Level.ERROR, "Mosaic communicator aborted, telling the peers why: "
        + reason.getMessage());
    self.fail(reason);
    for (PeerConnection p : peers) {
      if (p != null) {
        p.startAbort(reason);
      }
    }
    long deadline = System.nanoTime() + ABORT_GRACE_NANOS;
    for (PeerConnection p : peers) {
      if (p != null) {
        p.finishAbort(deadline);
      }
    }
  }

  /** Closes every socket, fails every waiter and joins the I/O threads. Idempotent. */
  void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    CommException reason = new CommException("the communicator of rank " + rank + " was closed");
    for (PeerConnection p : peers) {
      if (p != null) {
        p.fail(reason);
      }
    }
    self.fail(reason);
    try {
      for (PeerConnection p : peers) {
        if (p != null) {
          p.join(JOIN_MILLIS);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt(); // sockets are closed; threads finish on their own
    }
  }
}
