package dev.mosaic.spark.comm;

/** A validated frame header: which message it is and how many payload bytes follow. */
record FrameHeader(FrameKey key, long payloadBytes) {

  int floats() {
    return (int) (payloadBytes / Float.BYTES);
  }
}
