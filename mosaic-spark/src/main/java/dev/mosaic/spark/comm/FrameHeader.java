package dev.mosaic.spark.comm;

/**
 * A validated frame header: which message it is, how many payload bytes follow and in which type
 * ({@code wire}; the receiver widens bf16 to fp32). An abort notice ({@code abort}) carries the
 * UTF-8 reason why the peer gave up instead of floats.
 */
record FrameHeader(FrameKey key, long payloadBytes, boolean abort, WireDtype wire) {

  /** Elements in the payload: what the receiving float[] must hold. */
  int floats() {
    return (int) (payloadBytes / wire.bytes());
  }
}
