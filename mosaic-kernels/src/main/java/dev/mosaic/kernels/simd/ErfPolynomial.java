package dev.mosaic.kernels.simd;

import static dev.mosaic.kernels.simd.Exp2Polynomial.ROUNDER;

/**
 * The float erf of the exact GELU, {@code x/2·(1 + erf(x/√2))}, shared by the SIMD loop
 * ({@code PanamaFlashOps.gelu}) and the scalar one, which evaluate the same operations so both
 * paths give the same bits. Near-minimax fits ({@code tools/codegen/erf_polynomial.py}):
 * {@code erf(a) = a + a·(P(a²) − 1)} for {@code a < SPLIT}, {@code 1 − e^{−a²}·R((a − MID)/HALF)} below
 * {@code LIMIT}, 1 beyond (erfc(3.92) = 3.3e-8). The fits are 1.2e-9 from erf in double; in
 * fp32 the error is a few units in the last place (checked over a dense grid by
 * {@code ErfPolynomialTest}).
 */
final class ErfPolynomial {
  // |erf error| in double: 8.7e-11 below the split, 1.2e-09 above
  static final float SPLIT = 0.875f;
  static final float LIMIT = 3.92f;
  static final float MID = 2.3975f;
  static final float INV_HALF = 0.6568144499178982f;
  static final float P0_MINUS_1 = 0.12837916612625122f;
  static final float P1 = -0.37612631916999817f;
  static final float P2 = 0.11283686757087708f;
  static final float P3 = -0.026859542354941368f;
  static final float P4 = 0.005202353000640869f;
  static final float P5 = -0.000816561107058078f;
  static final float P6 = 8.493966015521437e-05f;
  static final float R0 = 0.21869789063930511f;
  static final float R1 = -0.12138240039348602f;
  static final float R2 = 0.06385721266269684f;
  static final float R3 = -0.032112762331962585f;
  static final float R4 = 0.015850279480218887f;
  static final float R5 = -0.006144610699266195f;
  static final float R6 = 0.0036253456491976976f;
  static final float R7 = -0.003257305361330509f;
  static final float R8 = -0.00229004118591547f;
  static final float R9 = -0.0016738176345825195f;
  static final float INV_SQRT2 = (float) (1 / Math.sqrt(2));
  static final float MINUS_LOG2E = (float) (-1 / Math.log(2));
  /** −log2(e)/2: e^{−x²/2} = 2^{x²·MINUS_HALF_LOG2E}. */
  static final float MINUS_HALF_LOG2E = (float) (-0.5 / Math.log(2));
  /** The polynomial's floor: below 2^−126, x·φ(x) is far below a float's resolution of Φ(x). */
  static final float EXP2_FLOOR = -126f;
  static final float INV_SQRT_2PI = (float) (1 / Math.sqrt(2 * Math.PI));

  private ErfPolynomial() {}

  /** erf in float, the operations of the SIMD loop one lane at a time. */
  static float erf(float z) {
    float a = Math.abs(z);
    float a2 = a * a;
    float small = P6;
    small = Math.fma(small, a2, P5);
    small = Math.fma(small, a2, P4);
    small = Math.fma(small, a2, P3);
    small = Math.fma(small, a2, P2);
    small = Math.fma(small, a2, P1);
    small = Math.fma(small, a2, P0_MINUS_1);
    small = Math.fma(a, small, a); // a + a·(P − 1): one rounding at erf's size
    float c = Math.min(a, LIMIT); // keeps 2^(−c²·log2 e) in the polynomial's range
    float u = (c - MID) * INV_HALF;
    float r = R9;
    r = Math.fma(r, u, R8);
    r = Math.fma(r, u, R7);
    r = Math.fma(r, u, R6);
    r = Math.fma(r, u, R5);
    r = Math.fma(r, u, R4);
    r = Math.fma(r, u, R3);
    r = Math.fma(r, u, R2);
    r = Math.fma(r, u, R1);
    r = Math.fma(r, u, R0);
    float large = 1f - exp2NonPositive(c * c * MINUS_LOG2E) * r;
    float e = a < SPLIT ? small : a < LIMIT ? large : 1f;
    return Math.copySign(e, z);
  }

  /** PyTorch's exact GELU with this erf, in PyTorch's order of operations. */
  static float gelu(float x) {
    return 0.5f * x * (1f + erf(x * INV_SQRT2));
  }

  /**
   * GELU's derivative {@code Φ(x) + x·φ(x)} in float, the operations of the SIMD loop one lane at
   * a time; within a few units in the last place of the double-precision derivative.
   */
  static float geluDerivative(float x) {
    float cdf = (erf(x * INV_SQRT2) + 1f) * 0.5f;
    float arg = Math.max(x * x * MINUS_HALF_LOG2E, EXP2_FLOOR);
    float pdf = exp2NonPositive(arg) * INV_SQRT_2PI;
    return Math.fma(x, pdf, cdf);
  }

  /** 2^x for x in [−126, 0]: the forward kernel's polynomial. */
  private static float exp2NonPositive(float x) {
    float t = x + ROUNDER;
    float f = x - (t - ROUNDER);
    float p = Math.fma(f, Exp2Polynomial.C5, Exp2Polynomial.C4);
    p = Math.fma(p, f, Exp2Polynomial.C3);
    p = Math.fma(p, f, Exp2Polynomial.C2);
    p = Math.fma(p, f, Exp2Polynomial.C1);
    p = Math.fma(p, f, 1f);
    int bits = (Float.floatToRawIntBits(t) + 127) << 23;
    return p * Float.intBitsToFloat(bits);
  }
}
