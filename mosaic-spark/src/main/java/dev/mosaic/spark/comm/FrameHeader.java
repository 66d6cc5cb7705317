package dev.mosaic.spark.comm;

/**
 * A validated frame header: which message it is and how many payload bytes follow. An abort
 * notice ({@code abort}) carries the UTF-8 reason why the peer gave up instead of floats.
 */
record FrameHeader(FrameKey key, long payloadBytes, boolean abort) {

  int floats() {
    return (int) (payloadBytes / Float.BYTES);
  }
}
