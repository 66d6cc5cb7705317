package dev.mosaic.kernels.gpu;

/**
 * One argument of a kernel launch, as the bits the kernel's C signature expects: a device pointer
 * or {@code long long} (8 bytes), an {@code int} or a {@code float} (4 bytes). Building launches
 * from these lets the tests check the Java side's argument list against the {@code .cu}
 * signatures without a GPU (see the host emulation test).
 */
public record KernelArg(Type type, long bits) {
  public enum Type {
    PTR,
    I64,
    I32,
    F32
  }

  public static KernelArg ptr(long address) {
    return new KernelArg(Type.PTR, address);
  }

  public static KernelArg i64(long value) {
    return new KernelArg(Type.I64, value);
  }

  public static KernelArg i32(int value) {
    return new KernelArg(Type.I32, value);
  }

  public static KernelArg f32(float value) {
    return new KernelArg(Type.F32, Float.floatToRawIntBits(value));
  }

  public int asInt() {
    return (int) bits;
  }

  public float asFloat() {
    return Float.intBitsToFloat((int) bits);
  }
}
