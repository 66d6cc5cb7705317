package dev.mosaic.spark.comm;

import java.util.concurrent.CompletableFuture;

/**
 * One frame queued for a peer's sender thread, its payload to travel as {@code wire}; {@code done}
 * completes once it is on the wire.
 */
record SendJob(FrameKey key, float[] data, int off, int len, WireDtype wire,
    CompletableFuture<Void> done) {

  SendJob(FrameKey key, float[] data, int off, int len, WireDtype wire) {
    this(key, data, off, len, wire, new CompletableFuture<>());
  }

  void fail(CommException e) {
    done.completeExceptionally(e);
  }
}
