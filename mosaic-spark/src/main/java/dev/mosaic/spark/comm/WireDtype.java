package dev.mosaic.spark.comm;

import dev.mosaic.kernels.gpu.GpuDtype;
import java.util.Locale;

/**
 * How float32 payloads travel over TCP ({@code spark.mosaic.comm.wireDtype}). Arithmetic is fp32
 * on both sides either way; {@link #BF16} only changes what crosses the socket.
 *
 * <p><b>Error of bf16.</b> bfloat16 keeps fp32's 8 exponent bits and 8 significant bits (7
 * stored + the implicit one), so rounding to nearest even changes a normal value x by at most half
 * a unit in the last place: {@code |x̃ − x| ≤ u·|x|} with unit roundoff {@code u = 2^-8} (the
 * bound is reached: {@code 1 + 2^-8} rounds to 1). Values below bf16's smallest normal
 * (~1.2e-38) lose relative accuracy but their absolute error stays below 2^-134. Overflow past
 * bf16's largest value (~3.39e38) rounds to infinity; NaN stays NaN. What this means for an
 * attention output is derived in docs/user-guide.md ("K/V in bf16 on the wire").
 */
public enum WireDtype {
  /** Four bytes per element, exact. */
  FP32(4),
  /** Two bytes per element: the top half of the fp32 bits, rounded to nearest even. */
  BF16(2);

  /** Unit roundoff of bf16: the largest relative error of one rounding of a normal value. */
  public static final double BF16_UNIT_ROUNDOFF = 0x1p-8;

  private final int bytes;

  WireDtype(int bytes) {
    this.bytes = bytes;
  }

  /** Bytes per element on the wire. */
  public int bytes() {
    return bytes;
  }

  /** {@code fp32} or {@code bf16}, as the setting spells it. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** {@code fp32}/{@code float32} or {@code bf16}/{@code bfloat16}, any case. */
  public static WireDtype parse(String name) {
    String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
    switch (n) {
      case "fp32": case "float32":
        return FP32;
      case "bf16": case "bfloat16":
        return BF16;
      default:
        throw new IllegalArgumentException("wire dtype must be fp32 or bf16, got '" + name + "'");
    }
  }

  /** bfloat16 bits of {@code x}, rounded to nearest even (PyTorch's {@code .bfloat16()}). */
  public static short toBf16(float x) {
    return GpuDtype.floatToBf16(x);
  }

  /** The float a bfloat16 value stands for, exactly (bf16 ⊂ fp32). */
  public static float fromBf16(short b) {
    return GpuDtype.bf16ToFloat(b);
  }

  /** {@code x} after the round trip the wire does: unchanged for fp32. */
  public float round(float x) {
    return this == BF16 ? fromBf16(toBf16(x)) : x;
  }
}
