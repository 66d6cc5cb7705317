package dev.mosaic.kernels.simd;

/**
 * The few dense loops the CPU attention kernel and the linear layers spend their time in. One
 * scalar implementation ({@link ScalarFlashOps}) and one SIMD implementation on
 * {@code jdk.incubator.vector} ({@code PanamaFlashOps}); {@link VectorizationProvider} picks one at
 * start-up. Every caller pads column counts to a multiple of {@link #lanes()}.
 */
public interface FlashOps {

  String name();

  /** Vector width in floats; callers pad column counts to a multiple of it. */
  int lanes();

  /**
   * {@code C[r][c] (+)= Σ_k A[r][k]·B[k][c]} for {@code r < rows}, {@code c < cols}, {@code k < depth},
   * row-major with the given row strides. {@code cols} is a multiple of {@link #lanes()}.
   *
   * @param accumulate add to C instead of overwriting it
   */
  void gemm(float[] a, int aOff, int aStride, int rows, int depth, float[] b, int bOff, int bStride,
      float[] c, int cOff, int cStride, int cols, boolean accumulate);

  /** Maximum of {@code a[off, off+len)}; {@code -inf} for an empty range. */
  float max(float[] a, int off, int len);

  /**
   * Replaces each {@code a[i]} by {@code 2^(a[i] − shift)} (0 for {@code -inf}) and returns their
   * sum. {@code shift} is finite and not below any finite element.
   */
  float exp2Shifted(float[] a, int off, int len, float shift);

  /** {@code a[i] *= f}. */
  void scale(float[] a, int off, int len, float f);
}
