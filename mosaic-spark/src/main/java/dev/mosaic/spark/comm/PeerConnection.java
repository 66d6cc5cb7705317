package dev.mosaic.spark.comm;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The authenticated socket to one peer and the two daemon threads that drive it: a sender that
 * writes queued frames in order, and a receiver that reads every frame as soon as it arrives and
 * hands it to the {@link Mailbox} (straight into the caller's array when the receive is already
 * posted). Reading eagerly means a peer's send never blocks on this rank's program order, which
 * is what lets several transfers and communicators share one connection without deadlock.
 *
 * <p>The first failure (EOF, I/O error, protocol error, the peer's abort notice, or local close)
 * is sticky: the socket is closed, every queued send and waiting receive fails with it, and so
 * does every later operation. Those failures concern this peer only. Anything else an I/O thread
 * throws ({@code OutOfMemoryError}, a bug) means this rank is broken: it goes to the mesh's
 * {@code onFatal}, which fails every connection and tells every peer why ({@link #startAbort}).
 */
final class PeerConnection {

  private static final String SIDE_SENDER = "sender";
  private static final String SIDE_RECEIVER = "receiver";
  /** Longest rendering of a fatal Throwable in a message. */
  private static final int THROWABLE_CHARS = 300;
  /** Queued by {@link #startAbort}: the sender writes the abort notice and stops. */
  private static final SendJob ABORT = new SendJob(new FrameKey(-1, -1), new float[0], 0, 0,
      WireDtype.FP32);

  private final int localRank;
  private final String name;
  private final SocketChannel ch;
  private final CommConfig config;
  private final Consumer<CommException> onFatal;
  private final Mailbox mailbox = new Mailbox();
  private final BlockingQueue<SendJob> queue = new LinkedBlockingQueue<>();
  private final FrameCodec sendCodec = new FrameCodec(); // sender thread only
  private final Thread sender;
  private final Thread receiver;
  private final AtomicReference<Throwable> senderFault = new AtomicReference<>(); // test hook
  private final AtomicReference<Throwable> receiverFault = new AtomicReference<>(); // test hook
  private CommException failure; // guarded by this
  private volatile String abortNotice;
  private volatile boolean midFrame; // a frame was cut short: nothing more may follow it

  /**
   * {@code ch} must be connected, authenticated and in blocking mode; {@code onFatal} gets the
   * reason when an I/O thread fails unexpectedly.
   */
  PeerConnection(int localRank, int peerRank, PeerAddress address, SocketChannel ch,
      CommConfig config, Consumer<CommException> onFatal) {
    this.localRank = localRank;
    this.name = "rank " + peerRank + " (" + address + ")";
    this.ch = ch;
    this.config = config;
    this.onFatal = onFatal;
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
   * everything pending. Returns the failure that won; a later call only makes sure it is closed.
   */
  CommException fail(CommException e) {
    CommException won = record(e);
    shutdown();
    return won;
  }

  /**
   * First step of a mesh-wide abort: fails every waiter with {@code reason} at once and has the
   * sender write an abort notice after the frame it is writing (if any). Call {@link
   * #finishAbort} next. Does nothing more if the connection had already failed.
   */
  void startAbort(CommException reason) {
    if (record(reason) != reason) {
      return; // already failed (the peer left first): there is nobody to tell
    }
    abortNotice = reason.getMessage();
    if (Thread.currentThread() == sender) {
      writeAbortNotice(); // the sender itself failed: it is out of its loop, so write here
    } else {
      queue.add(ABORT);
    }
  }

  /** Second step: waits (until {@code deadlineNanos}) for the notice to go out, then closes. */
  void finishAbort(long deadlineNanos) {
    try {
      if (Thread.currentThread() != sender) {
        long left = deadlineNanos - System.nanoTime();
        if (left > 0) {
          TimeUnit.NANOSECONDS.timedJoin(sender, left);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt(); // close at once instead
    } finally {
      shutdown();
    }
  }

  /** Waits for both threads to end (after {@link #fail}). */
  void join(long millis) throws InterruptedException {
    for (Thread t : threads()) {
      if (t != Thread.currentThread()) {
        t.join(millis);
      }
    }
  }

  /** Test hook: the next frame the receiver (or sender) handles throws {@code fault} instead. */
  void injectFault(boolean inReceiver, Throwable fault) {
    (inReceiver ? receiverFault : senderFault).set(fault);
  }

  private CommException record(CommException e) {
    List<SendJob> unsent = new ArrayList<>();
    synchronized (this) {
      if (failure != null) {
        return failure;
      }
      failure = e;
      queue.drainTo(unsent);
    }
    mailbox.fail(e);
    unsent.forEach(job -> job.fail(e));
    return e;
  }

  private void shutdown() {
    try {
      ch.close();
    } catch (IOException ignored) {
      // Closing is best effort; the connection is unusable either way.
    }
    if (Thread.currentThread() != sender) {
      sender.interrupt(); // it may be parked on the empty queue
    }
  }

  private void runSender() {
    SendJob job = null;
    try {
      while (true) {
        job = queue.take();
        if (job == ABORT) {
          writeAbortNotice();
          return;
        }
        throwIfInjected(senderFault);
        midFrame = true;
        sendCodec.writeFrame(ch, job.key(), job.data(), job.off(), job.len(), job.wire());
        midFrame = false;
        job.done().complete(null);
        job = null;
      }
    } catch (InterruptedException e) {
      // fail() interrupts us on close; queued jobs were already failed there.
    } catch (IOException e) {
      CommException reason = fail(lost("sending to", e));
      if (job != null) {
        job.fail(reason);
      }
    } catch (Throwable t) {
      SendJob failed = job;
      String doing = failed == null ? "while waiting for frames to send to " + name
          : "while sending a " + Messages.bytes((long) failed.len() * failed.wire().bytes())
              + " frame to " + name;
      fatal(SIDE_SENDER, t, doing, reason -> {
        if (failed != null) {
          failed.fail(reason);
        }
      });
    }
  }

  private void runReceiver() {
    FrameCodec codec = new FrameCodec();
    FrameHeader header = null;
    PendingReceive reading = null; // claimed but not yet filled: must fail if the stream dies
    try {
      while (true) {
        header = null;
        header = codec.readHeader(ch, config.maxFrameBytes(), name);
        if (header == null) {
          fail(new CommException(name + " closed the connection"));
          return;
        }
        if (header.abort()) {
          fail(new CommException(name + " aborted: " + codec.readAbortReason(ch, header)));
          return;
        }
        throwIfInjected(receiverFault);
        int floats = header.floats();
        reading = mailbox.claim(header.key());
        if (reading == null) {
          // Nobody waits yet: buffer it. The length was bounded by maxFrameBytes in readHeader.
          float[] data = new float[floats];
          codec.readPayload(ch, data, 0, floats, header.wire());
          mailbox.deliver(header.key(), data);
          continue;
        }
        String mismatch = reading.mismatch(header.key(), floats);
        if (mismatch != null) {
          codec.skipPayload(ch, header.payloadBytes());
          reading.fail(new CommException(mismatch));
        } else {
          float[] target = reading.target(floats);
          codec.readPayload(ch, target, reading.offset(), floats, header.wire());
          reading.complete(target);
        }
        reading = null;
      }
    } catch (CommException e) {
      failAlso(reading, fail(e));
    } catch (IOException e) {
      failAlso(reading, fail(lost("receiving from", e)));
    } catch (Throwable t) {
      PendingReceive claimed = reading;
      String doing = header == null ? "while waiting for a frame from " + name
          : "while receiving a " + Messages.bytes(header.payloadBytes()) + " frame from " + name;
      fatal(SIDE_RECEIVER, t, doing, reason -> failAlso(claimed, reason));
    }
  }

  /**
   * An I/O thread hit something other than a lost peer: this rank cannot trust its own state.
   * Fails what the thread held, then the whole mesh (which tells the peers). If even that throws
   * (out of memory for the message), at least the socket closes so the peer sees EOF.
   */
  private void fatal(String side, Throwable t, String doing, Consumer<CommException> failHeld) {
    try {
      CommException reason = new CommException("rank " + localRank + ": " + side
          + " thread failed: " + Messages.oneLine(t.toString(), THROWABLE_CHARS) + " " + doing,
          t);
      failHeld.accept(reason);
      onFatal.accept(reason);
    } catch (Throwable again) {
      shutdown();
      throw again;
    }
  }

  /** Best effort: the reason reaches the peer unless the socket is already gone. */
  private void writeAbortNotice() {
    if (midFrame) {
      return; // the peer would read the notice as payload; it sees EOF instead
    }
    try {
      sendCodec.writeAbort(ch, abortNotice);
    } catch (IOException | RuntimeException ignored) {
      // The peer sees EOF instead of the reason.
    }
  }

  private static void throwIfInjected(AtomicReference<Throwable> hook) {
    Throwable t = hook.getAndSet(null);
    if (t instanceof Error e) {
      throw e;
    }
    if (t instanceof RuntimeException e) {
      throw e;
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
