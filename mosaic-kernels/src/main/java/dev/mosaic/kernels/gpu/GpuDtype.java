package dev.mosaic.kernels.gpu;

/**
 * Storage type of attention inputs on the GPU. Accumulation is always fp32. On sm_80+ fp16/bf16
 * inputs run on tensor cores ({@link KernelSelection}), whose products are exact in fp32 but whose
 * probabilities P are rounded to the 16-bit type before P·V ({@link TensorCoreTolerance}); the
 * fp32-FMA kernel only halves the bytes moved. Conversions round to nearest even, as PyTorch's {@code .half()} and
 * {@code .bfloat16()} do, so a CPU reference run on {@link #round rounded} inputs sees exactly what
 * the GPU sees.
 */
public enum GpuDtype {
  FP32(4, "f32"),
  FP16(2, "f16"),
  BF16(2, "bf16");

  private final int bytes;
  private final String suffix;

  GpuDtype(int bytes, String suffix) {
    this.bytes = bytes;
    this.suffix = suffix;
  }

  /** Bytes per element. */
  public int bytes() {
    return bytes;
  }

  /** The part of the kernel names that names this type ({@code mosaic_flash_fwd_<suffix>_d64}). */
  public String suffix() {
    return suffix;
  }

  /** Parses {@code fp32}/{@code f32}/{@code float32}, {@code fp16}/{@code half}, {@code bf16}. */
  public static GpuDtype parse(String name) {
    switch (name.toLowerCase(java.util.Locale.ROOT)) {
      case "fp32": case "f32": case "float32": case "float":
        return FP32;
      case "fp16": case "f16": case "float16": case "half":
        return FP16;
      case "bf16": case "bfloat16":
        return BF16;
      default:
        throw new IllegalArgumentException("unknown GPU dtype '" + name
            + "'; expected fp32, fp16 or bf16");
    }
  }

  /** {@code x} after a round trip through this type. */
  public float round(float x) {
    switch (this) {
      case FP16:
        return halfToFloat(floatToHalf(x));
      case BF16:
        return bf16ToFloat(floatToBf16(x));
      default:
        return x;
    }
  }

  /** IEEE 754 binary16 bits of {@code x}, rounded to nearest even; overflow gives infinity. */
  public static short floatToHalf(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) { // inf or NaN (keep NaN quiet and non-zero)
      return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) { // subnormal half, or zero
      if (e < -10) {
        return (short) sign;
      }
      int m = mant | 0x800000; // implicit bit
      int shift = 14 - e; // 1 - e + 13
      int half = m >>> shift;
      int rem = m & ((1 << shift) - 1);
      int mid = 1 << (shift - 1);
      if (rem > mid || (rem == mid && (half & 1) != 0)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = (e << 10) | (mant >>> 13);
    int rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
      half++; // may carry into the exponent, up to infinity: still correct
    }
    return (short) (sign | half);
  }

  /** binary16 bits to float, exactly: the same conversion the safetensors reader uses. */
  public static float halfToFloat(short h) {
    return dev.mosaic.kernels.io.Safetensors.halfToFloat(h);
  }

  /** bfloat16 bits of {@code x}: the top 16 bits, rounded to nearest even; NaN stays NaN. */
  public static short floatToBf16(float x) {
    int bits = Float.floatToRawIntBits(x);
    if ((bits & 0x7f800000) == 0x7f800000 && (bits & 0x7fffff) != 0) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  public static float bf16ToFloat(short b) {
    return Float.intBitsToFloat((b & 0xffff) << 16);
  }
}
