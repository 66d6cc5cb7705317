package dev.mosaic.kernels.gpu;

/**
 * How far the tensor-core kernel may be from an fp32 reference run on the same rounded inputs,
 * as a norm-wise relative error (the measure {@code selftest} and the GPU tests use). Its only
 * rounding beyond fp32 is P: each probability {@code p ≤ 1} is stored in the input's 16-bit type,
 * {@code |p̃ − p| ≤ u·p + η}, so output element c moves by at most
 * {@code u·Σ_j w_j|v_jc| + η·Σ_j|v_jc|} (w the softmax weights, l ≥ 1). The first sum is
 * attention over {@code |V|}; the second is at most {@code keys·max|v|}. Hence
 * {@code ‖err‖ ≤ u·‖attn(Q,K,|V|)‖ + η·keys·max|v|·√N}, divided by {@code ‖o‖}.
 */
public final class TensorCoreTolerance {
  private TensorCoreTolerance() {}

  /** Unit roundoff of the 16-bit type: 2^-11 (fp16), 2^-8 (bf16); 0 for fp32. */
  public static double unitRoundoff(GpuDtype t) {
    return t == GpuDtype.FP16 ? 0x1p-11 : t == GpuDtype.BF16 ? 0x1p-8 : 0;
  }

  /** Absolute rounding error below the smallest normal: 2^-25 for fp16, 0 otherwise. */
  public static double subnormalError(GpuDtype t) {
    return t == GpuDtype.FP16 ? 0x1p-25 : 0;
  }

  /**
   * The relative tolerance: {@code fp32Tol} plus the P-rounding bound above.
   *
   * @param expected the reference output
   * @param expectedOnAbsV the reference output with V replaced by |V| (same masks)
   * @param maxAbsV the largest |v|
   * @param keys the number of keys
   */
  public static double relative(GpuDtype t, double fp32Tol, float[] expected,
      float[] expectedOnAbsV, double maxAbsV, int keys) {
    double norm = norm(expected);
    if (norm == 0) {
      return fp32Tol;
    }
    double bound = unitRoundoff(t) * norm(expectedOnAbsV)
        + subnormalError(t) * keys * maxAbsV * Math.sqrt(expected.length);
    return fp32Tol + bound / norm;
  }

  private static double norm(float[] x) {
    double s = 0;
    for (float v : x) {
      s += (double) v * v;
    }
    return Math.sqrt(s);
  }
}
