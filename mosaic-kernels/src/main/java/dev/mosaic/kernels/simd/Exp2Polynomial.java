package dev.mosaic.kernels.simd;

/**
 * The constants of the Panama loops' 2^x, shared by the forward ({@code exp2Columns}) and the
 * backward ({@code probabilities}) so that the backward's recomputed probabilities are the
 * forward's to the last bit. 2^x = 2^n·p(f) with n = round(x), f = x − n in [−0.5, 0.5]; p is a
 * degree-5 minimax polynomial (Lawson's weighted least squares on the relative error, max
 * relative error 1.0e-7, 1.9e-7 evaluated in fp32; {@code tools/codegen}). The loops evaluate it
 * inline: a vector crossing a call C2 did not inline is boxed.
 */
final class Exp2Polynomial {
  static final float C1 = 0.6931470036506653f;
  static final float C2 = 0.2402222603559494f;
  static final float C3 = 0.0555066280066967f;
  static final float C4 = 0.009672392159700394f;
  static final float C5 = 0.0013287414330989122f;
  /** 1.5·2^23: adding it rounds a float in (−2^22, 2^22) to an integer kept in the low bits. */
  static final float ROUNDER = 12582912f;

  private Exp2Polynomial() {}
}
