package dev.mosaic.spark.comm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The fully connected set of authenticated connections of one rank, shared by the root
 * communicator and all communicators split from it. Indexed by mesh rank (the root's ranks);
 * this rank's own slot is a local {@link Mailbox} so that send-to-self is a plain copy.
 */
final class Mesh {

  /** How long close() waits for each I/O thread; they end as soon as their socket closes. */
  private static final long JOIN_MILLIS = 5_000;

  private final int rank;
  private final List<PeerAddress> addresses;
  private final PeerConnection[] peers; // null at [rank]
  private final Mailbox self = new Mailbox();
  private final CommConfig config;
  private volatile boolean closed;

  Mesh(int rank, List<PeerAddress> addresses, PeerConnection[] peers, CommConfig config) {
    this.rank = rank;
    this.addresses = List.copyOf(addresses);
    this.peers = peers.clone();
    this.config = config;
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

  Mailbox mailbox(int meshRank) {
    return meshRank == rank ? self : peers[meshRank].mailbox();
  }

  /** "rank 3 (10.0.0.7:41234)", or "rank 0 (self, ...)" for this rank. */
  String describe(int meshRank) {
    return meshRank == rank
        ? "rank " + rank + " (self, " + addresses.get(rank) + ")"
        : peers[meshRank].name();
  }

  /** Sends a frame; to self it is copied into the local mailbox right away. */
  CompletableFuture<Void> send(int meshRank, FrameKey key, float[] data, int off, int len) {
    if (meshRank == rank) {
      self.deliverCopy(key, data, off, len);
      return CompletableFuture.completedFuture(null);
    }
    SendJob job = new SendJob(key, data, off, len);
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
