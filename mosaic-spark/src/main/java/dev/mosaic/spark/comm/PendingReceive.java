package dev.mosaic.spark.comm;

import java.util.concurrent.CompletableFuture;

/**
 * A posted receive: where the payload of one {@link FrameKey} goes. Either a fixed window of a
 * caller's array ({@code len >= 0}; the frame must have exactly that many floats) or "any length"
 * ({@code len == ANY}; an array of the announced size is allocated on arrival, used by collectives
 * with variable lengths). Completes with the array that holds the data.
 */
final class PendingReceive {

  static final int ANY = -1;

  private final float[] dst;
  private final int off;
  private final int len;
  private final String source;
  private final CompletableFuture<float[]> done = new CompletableFuture<>();

  /** {@code source} describes the sender for messages, e.g. "rank 1 (127.0.0.1:4000)". */
  PendingReceive(float[] dst, int off, int len, String source) {
    this.dst = dst;
    this.off = off;
    this.len = len;
    this.source = source;
  }

  static PendingReceive anyLength(String source) {
    return new PendingReceive(null, 0, ANY, source);
  }

  CompletableFuture<float[]> future() {
    return done;
  }

  int expectedFloats() {
    return len;
  }

  /** Null if a frame of {@code floats} fits this receive, else why not. */
  String mismatch(FrameKey key, int floats) {
    if (len == ANY || len == floats) {
      return null;
    }
    return String.format("receive from %s (%s) expected %d floats (%d bytes) but the peer sent"
            + " %d floats (%d bytes)", source, key, len, (long) len * Float.BYTES, floats,
        (long) floats * Float.BYTES);
  }

  /** The array the network thread should read {@code floats} into, starting at {@link #offset}. */
  float[] target(int floats) {
    return len == ANY ? new float[floats] : dst;
  }

  int offset() {
    return len == ANY ? 0 : off;
  }

  /** Completes from a buffered frame; the array is owned by the mailbox, so no copy for ANY. */
  void fill(FrameKey key, float[] data) {
    String problem = mismatch(key, data.length);
    if (problem != null) {
      fail(new CommException(problem));
    } else if (len == ANY) {
      done.complete(data);
    } else {
      System.arraycopy(data, 0, dst, off, len);
      done.complete(dst);
    }
  }

  /** Completes from a send to self: copies {@code src[srcOff, srcOff+floats)} exactly once. */
  void fillCopy(FrameKey key, float[] src, int srcOff, int floats) {
    String problem = mismatch(key, floats);
    if (problem != null) {
      fail(new CommException(problem));
      return;
    }
    float[] target = target(floats);
    System.arraycopy(src, srcOff, target, offset(), floats);
    done.complete(target);
  }

  void complete(float[] target) {
    done.complete(target);
  }

  void fail(CommException e) {
    done.completeExceptionally(e);
  }
}
