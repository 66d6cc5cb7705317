package dev.mosaic.spark.comm;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * The handle of one send + receive pair. {@link #await()} waits for both within one timeout
 * (counted from the call to await) and turns every failure into a {@link CommException} that
 * names the operation and the peer.
 */
final class PendingTransfer implements Communicator.Transfer {

  /** The send half: to whom, how much, and when it left. */
  record SendSide(CompletableFuture<Void> done, String peer, int floats) {}

  /** The receive half: from whom, which frame, and where it was posted (to withdraw it). */
  record ReceiveSide(PendingReceive receive, String peer, FrameKey key, Mailbox mailbox) {}

  private final String op;
  private final CommConfig config;
  private final SendSide send;
  private final ReceiveSide recv;

  PendingTransfer(String op, CommConfig config, SendSide send, ReceiveSide recv) {
    this.op = op;
    this.config = config;
    this.send = send;
    this.recv = recv;
  }

  @Override
  public void await() {
    result();
  }

  /** Waits for both halves; returns the array holding the received floats. */
  float[] result() {
    long deadline = System.nanoTime() + config.timeout().toNanos();
    waitFor(send.done(), deadline,
        () -> "sending " + send.floats() + " floats to " + send.peer(), null);
    int expected = recv.receive().expectedFloats();
    String what = expected == PendingReceive.ANY ? "a message"
        : expected == 0 ? "an empty (synchronisation) message" : expected + " floats";
    return waitFor(recv.receive().future(), deadline,
        () -> "waiting for " + what + " from " + recv.peer() + " (" + recv.key() + ")",
        () -> recv.mailbox().cancel(recv.key(), recv.receive()));
  }

  private <T> T waitFor(CompletableFuture<T> future, long deadline, Supplier<String> what,
      Runnable onTimeout) {
    try {
      return future.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      if (onTimeout != null) {
        onTimeout.run(); // a late frame must not land in an array the caller took back
      }
      throw new CommException(op + ": " + config.timedOut() + " " + what.get());
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      throw new CommException(op + ": " + what.get() + " failed: " + cause.getMessage(), cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException(op + ": interrupted while " + what.get(), e);
    }
  }
}
