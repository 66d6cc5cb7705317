package dev.mosaic.spark.comm;

import java.util.concurrent.CompletableFuture;

/** One frame queued for a peer's sender thread; {@code done} completes once it is on the wire. */
record SendJob(FrameKey key, float[] data, int off, int len, CompletableFuture<Void> done) {

  SendJob(FrameKey key, float[] data, int off, int len) {
    this(key, data, off, len, new CompletableFuture<>());
  }

  void fail(CommException e) {
    done.completeExceptionally(e);
  }
}
