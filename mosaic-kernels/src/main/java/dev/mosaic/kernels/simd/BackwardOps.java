package dev.mosaic.kernels.simd;

/**
 * The element-wise column loops of the CPU attention backward (its GEMMs are {@link FlashOps}'s).
 * Tiles are transposed as in the forward kernel: one row per key, one column per query, so every
 * per-query quantity (log-sum-exp, {@code D = rowsum(dO∘O)}) is a vector of column values.
 * {@link BackwardVectorization} picks the SIMD or scalar implementation, paired with the forward's
 * {@link FlashOps}; callers pad column counts to a multiple of {@link #lanes()}.
 */
public interface BackwardOps {

  String name();

  /** Vector width in floats; equal to the paired {@link FlashOps#lanes()}. */
  int lanes();

  /**
   * Recomputes softmax probabilities from base-2 scores: {@code A[r][c] = 2^(A[r][c] − lse2[c])}.
   * {@code -inf} scores (masked keys) give 0, and so does every score of a column whose
   * {@code lse2[c]} is {@code +inf} (the callers' marker for a query that sees no key).
   */
  void probabilities(float[] a, int off, int stride, int rows, int cols, float[] lse2);

  /**
   * The softmax gradient in place of {@code dP}: {@code dP[r][c] = P[r][c]·(dP[r][c] − d[c])}.
   * Both tiles start at {@code off} with row stride {@code stride}.
   */
  void softmaxGrad(float[] p, float[] dp, int off, int stride, int rows, int cols, float[] d);
}
