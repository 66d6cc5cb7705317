package dev.mosaic.kernels.io;

/**
 * The element types a safetensors header may name, with their width in bits. Only {@link #F32},
 * {@link #F16}, {@link #BF16} and {@link #F64} can be read as float32; the others are recognised
 * so that their byte ranges can be validated (and other tensors in the same file read), but
 * converting them is refused.
 */
public enum SafetensorsDtype {
  BOOL(8),
  U8(8),
  I8(8),
  F8_E5M2(8),
  F8_E4M3(8),
  F8_E8M0(8),
  I16(16),
  U16(16),
  F16(16),
  BF16(16),
  I32(32),
  U32(32),
  F32(32),
  I64(64),
  U64(64),
  F64(64),
  C64(64),
  F4(4),
  F6_E2M3(6),
  F6_E3M2(6);

  private final int bits;

  SafetensorsDtype(int bits) {
    this.bits = bits;
  }

  /** Width of one element in bits (sub-byte types pack several elements per byte). */
  public int bits() {
    return bits;
  }

  /** Whether {@link Safetensors} can convert this dtype to float32. */
  public boolean readableAsFloat32() {
    return this == F32 || this == F16 || this == BF16 || this == F64;
  }

  /** The dtype named {@code name} (exact, as in the header), or null if it is not one we know. */
  public static SafetensorsDtype fromName(String name) {
    return name == null ? null : BY_NAME.get(name);
  }

  // A lookup, not a loop over values(): called for every tensor of headers with a million.
  private static final java.util.Map<String, SafetensorsDtype> BY_NAME = byName();

  private static java.util.Map<String, SafetensorsDtype> byName() {
    java.util.Map<String, SafetensorsDtype> m = new java.util.HashMap<>();
    for (SafetensorsDtype d : values()) {
      m.put(d.name(), d);
    }
    return java.util.Map.copyOf(m);
  }
}
