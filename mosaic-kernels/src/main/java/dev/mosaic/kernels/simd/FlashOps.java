package dev.mosaic.kernels.simd;

/**
 * The few dense loops the CPU attention kernel and the linear layers spend their time in. One
 * scalar implementation ({@link ScalarFlashOps}) and one SIMD implementation on
 * {@code jdk.incubator.vector} ({@code PanamaFlashOps}); {@link VectorizationProvider} picks one at
 * start-up. Every caller pads column counts to a multiple of {@link #lanes()}.
 */
public interface FlashOps {

  String name();

  /** Implementation details worth logging once (register blocking); empty by default. */
  default String describe() {
    return "";
  }

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

  /**
   * Column maxima: {@code m[c] = max(m[c], A[r][c])} over {@code r < rows}, for {@code c < cols}
   * (a multiple of {@link #lanes()}); A starts at {@code off} with row stride {@code stride}.
   */
  void colMax(float[] a, int off, int stride, int rows, int cols, float[] m);

  /**
   * {@code A[r][c] = 2^(A[r][c] − shift[c])} (0 for {@code -inf}) and {@code sum[c] += A[r][c]}.
   * Each {@code shift[c]} is finite and at most 8 below every finite element of its column (the
   * kernel's lazy rescaling lets results reach 2^8).
   */
  void exp2Columns(float[] a, int off, int stride, int rows, int cols, float[] shift,
      float[] sum);

  /**
   * {@link #exp2Columns} and {@link #colMax} in one pass over A: {@code max[c] = max(max[c],
   * A[r][c])} over the values before the exponential, then {@code A[r][c] = 2^(A[r][c] −
   * shift[c])} and {@code sum[c] += A[r][c]} exactly as {@code exp2Columns} computes them (same
   * bits). Returns whether some {@code max[c]} ended more than {@code slack} above its value on
   * entry; the results are then meant to be thrown away (the exponentials may have overflowed).
   * {@code shift[c]} must be finite.
   */
  boolean exp2ColumnsTrackingMax(float[] a, int off, int stride, int rows, int cols,
      float[] shift, float[] sum, float[] max, float slack);

  /** {@code A[r][c] *= f[c]}. */
  void scaleColumns(float[] a, int off, int stride, int rows, int cols, float[] f);

  /**
   * PyTorch's exact GELU in place, {@code x[i] = x[i]/2·(1 + erf(x[i]/√2))} for
   * {@code off <= i < off + n}, with a float erf within a few units in the last place of the true
   * one (both implementations give the same bits: {@code ErfPolynomial}).
   */
  void gelu(float[] x, int off, int n);

  /**
   * GELU's backward, {@code dx[i] = dy[i]·GELU'(x[i])} for {@code i < n}, with
   * {@code GELU'(x) = Φ(x) + x·φ(x)} in float (both implementations give the same bits:
   * {@code ErfPolynomial.geluDerivative}).
   */
  void geluBackward(float[] x, float[] dy, float[] dx, int n);
}
