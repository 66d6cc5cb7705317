package dev.mosaic.spark.comm;

/**
 * Identifies one message on one connection: the communicator it belongs to and its position in
 * that communicator's stream to this peer. Both sides count sends/receives per (channel, peer), so
 * the k-th send of a channel matches the k-th receive of the same channel on the other side.
 */
record FrameKey(long channel, long seq) {

  @Override
  public String toString() {
    return "channel " + Long.toHexString(channel) + " seq " + seq;
  }
}
