package dev.mosaic.spark.comm;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The authenticated socket to one peer and the two daemon threads that drive it: a sender that
 * writes queued frames in order, and a receiver that reads every frame as soon as it arrives and
 * hands it to the {@link Mailbox} (straight into the caller's array when the receive is already
 * posted). Reading eagerly means a peer's send never blocks on this rank's program order, which
 * is what lets several transfers and communicators share one connection without deadlock.
 *
 * <p>The first failure (EOF, I/O error, protocol error, or local close) is sticky: the socket is
 * closed, every queued send and waiting receive fails with it, and so does every later operation.
 */
final class PeerConnection {

  private final String name;
  private final SocketChannel ch;
  private final CommConfig config;
  private final Mailbox mailbox = new Mailbox();
  private final BlockingQueue<SendJob> queue = new LinkedBlockingQueue<>();
  private final Thread sender;
  private final Thread receiver;
  private CommException failure; // guarded by this

  /** {@code ch} must be connected, authenticated and in blocking mode. */
  PeerConnection(int localRank, int peerRank, PeerAddress address, SocketChannel ch,
      CommConfig config) {
    this.name = "rank " + peerRank + " (" + address + ")";
    this.ch = ch;
    this.config = config;
    String prefix = "mosaic-comm-r" + localRank + "-";
    this.sender = daemon(prefix + "send-r" + peerRank, this::runSender);
    this.receiver = daemon(prefix + "recv-r" + peerRank, this::runReceiver);
  }

  void start() {
    sender.start();
    receiver.start();
  }

  /** "rank 3 (10.0.0.7:41234)". */
  String name() {
    return name;
  }

  Mailbox mailbox() {
    return mailbox;
  }

  List<Thread> threads() {
    return List.of(sender, receiver);
  }

  /** Queues a frame; fails it at once if the connection is already gone. */
  void send(SendJob job) {
    CommException failed;
    synchronized (this) {
      failed = failure;
      if (failed == null) {
        queue.add(job);
        return;
      }
    }
    job.fail(failed);
  }

  /**
   * Records the first failure, closes the socket (which also unblocks both threads) and fails
   * everything pending. Later calls are no-ops. Returns the failure that won.
   */
  CommException fail(CommException e) {
    List<SendJob> unsent = new ArrayList<>();
    synchronized (this) {
      if (failure != null) {
        return failure;
      }
      failure = e;
      queue.drainTo(unsent);
    }
    try {
      ch.close();
    } catch (IOException ignored) {
      // Closing is best effort; the connection is unusable either way.
    }
    sender.interrupt(); // it may be parked on the empty queue
    mailbox.fail(e);
    unsent.forEach(job -> job.fail(e));
    return e;
  }

  /** Waits for both threads to end (after {@link #fail}). */
  void join(long millis) throws InterruptedException {
    for (Thread t : threads()) {
      if (t != Thread.currentThread()) {
        t.join(millis);
      }
    }
  }

  private void runSender() {
    FrameCodec codec = new FrameCodec();
    try {
      while (true) {
        SendJob job = queue.take();
        try {
          codec.writeFrame(ch, job.key(), job.data(), job.off(), job.len());
          job.done().complete(null);
        } catch (IOException e) {
          job.fail(fail(lost("sending to", e)));
          return;
        }
      }
    } catch (InterruptedException e) {
      // fail() interrupts us on close; queued jobs were already failed there.
    }
  }

  private void runReceiver() {
    FrameCodec codec = new FrameCodec();
    PendingReceive reading = null; // claimed but not yet filled: must fail if the stream dies
    try {
      while (true) {
        FrameHeader header = codec.readHeader(ch, config.maxFrameBytes(), name);
        if (header == null) {
          fail(new CommException(name + " closed the connection"));
          return;
        }
        int floats = header.floats();
        reading = mailbox.claim(header.key());
        if (reading == null) {
          // Nobody waits yet: buffer it. The length was bounded by maxFrameBytes in readHeader.
          float[] data = new float[floats];
          codec.readPayload(ch, data, 0, floats);
          mailbox.deliver(header.key(), data);
          continue;
        }
        String mismatch = reading.mismatch(header.key(), floats);
        if (mismatch != null) {
          codec.skipPayload(ch, header.payloadBytes());
          reading.fail(new CommException(mismatch));
        } else {
          float[] target = reading.target(floats);
          codec.readPayload(ch, target, reading.offset(), floats);
          reading.complete(target);
        }
        reading = null;
      }
    } catch (CommException e) {
      failAlso(reading, fail(e));
    } catch (IOException e) {
      failAlso(reading, fail(lost("receiving from", e)));
    }
  }

  private static void failAlso(PendingReceive reading, CommException e) {
    if (reading != null) {
      reading.fail(e);
    }
  }

  private CommException lost(String doing, IOException e) {
    if (e instanceof ClosedChannelException) {
      // Usually our own close() racing the thread; fail() keeps the first (real) reason anyway.
      return new CommException("connection to " + name + " is closed");
    }
    return new CommException("connection to " + name + " lost while " + doing + " it: " + e, e);
  }

  private static Thread daemon(String name, Runnable body) {
    Thread t = new Thread(body, name);
    t.setDaemon(true);
    return t;
  }
}
