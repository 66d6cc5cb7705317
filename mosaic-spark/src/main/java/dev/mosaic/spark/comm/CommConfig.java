package dev.mosaic.spark.comm;

import java.time.Duration;
import java.util.Objects;

/**
 * Settings of a {@link TcpCommunicator}.
 *
 * @param timeout bound on every blocking wait: connecting, accepting, each handshake read, each
 *     {@link Communicator.Transfer#await()} and every step of a collective. A wait that runs out
 *     throws {@link CommException} naming the operation, the peer and this value.
 * @param maxFrameBytes the largest payload a peer may announce in one frame; a larger announcement
 *     is rejected before anything is allocated for it
 */
public record CommConfig(Duration timeout, long maxFrameBytes) {

  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);
  public static final long DEFAULT_MAX_FRAME_BYTES = 1L << 30;

  public CommConfig {
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isZero() || timeout.isNegative()) {
      throw new IllegalArgumentException("timeout must be positive, got " + timeout);
    }
    if (maxFrameBytes < 0) {
      throw new IllegalArgumentException("maxFrameBytes must be >= 0, got " + maxFrameBytes);
    }
  }

  /** 120 s timeout, 1 GiB frames. */
  public static CommConfig defaults() {
    return new CommConfig(DEFAULT_TIMEOUT, DEFAULT_MAX_FRAME_BYTES);
  }

  public CommConfig withTimeout(Duration newTimeout) {
    return new CommConfig(newTimeout, maxFrameBytes);
  }

  public CommConfig withMaxFrameBytes(long newMaxFrameBytes) {
    return new CommConfig(timeout, newMaxFrameBytes);
  }

  /** The suffix of every timeout message, e.g. "timed out after 500 ms (CommConfig.timeout)". */
  String timedOut() {
    return "timed out after " + timeout.toMillis() + " ms (CommConfig.timeout)";
  }
}
