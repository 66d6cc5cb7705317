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
 * @param wireDtype how {@link Communicator#sendRecvActivations} payloads (the ring's K/V blocks)
 *     travel: {@link WireDtype#FP32} exactly, or {@link WireDtype#BF16} rounded, in half the
 *     bytes. Every other payload (collectives, gradients, partial outputs and their log-sum-exps)
 *     always travels in fp32
 */
public record CommConfig(Duration timeout, long maxFrameBytes, WireDtype wireDtype) {

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
    Objects.requireNonNull(wireDtype, "wireDtype");
  }

  /** K/V in fp32 on the wire. */
  public CommConfig(Duration timeout, long maxFrameBytes) {
    this(timeout, maxFrameBytes, WireDtype.FP32);
  }

  /** 120 s timeout, 1 GiB frames, fp32 on the wire. */
  public static CommConfig defaults() {
    return new CommConfig(DEFAULT_TIMEOUT, DEFAULT_MAX_FRAME_BYTES);
  }

  public CommConfig withTimeout(Duration newTimeout) {
    return new CommConfig(newTimeout, maxFrameBytes, wireDtype);
  }

  public CommConfig withMaxFrameBytes(long newMaxFrameBytes) {
    return new CommConfig(timeout, newMaxFrameBytes, wireDtype);
  }

  public CommConfig withWireDtype(WireDtype newWireDtype) {
    return new CommConfig(timeout, maxFrameBytes, newWireDtype);
  }

  /** The suffix of every timeout message, e.g. "timed out after 500 ms (CommConfig.timeout)". */
  String timedOut() {
    return "timed out after " + timeout.toMillis() + " ms (CommConfig.timeout)";
  }
}
