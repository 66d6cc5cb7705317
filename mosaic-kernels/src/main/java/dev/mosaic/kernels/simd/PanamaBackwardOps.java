package dev.mosaic.kernels.simd;

import static dev.mosaic.kernels.simd.Exp2Polynomial.C1;
import static dev.mosaic.kernels.simd.Exp2Polynomial.C2;
import static dev.mosaic.kernels.simd.Exp2Polynomial.C3;
import static dev.mosaic.kernels.simd.Exp2Polynomial.C4;
import static dev.mosaic.kernels.simd.Exp2Polynomial.C5;
import static dev.mosaic.kernels.simd.Exp2Polynomial.ROUNDER;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * SIMD loops on the incubating Vector API, loaded only by {@link BackwardVectorization} (by
 * reflection, after the forward's provider chose its SIMD ops), so JVMs without the module never
 * load it. The species ({@link PanamaSpecies}) and the 2^x ({@link Exp2Polynomial}) are the
 * forward's, so both agree on lanes and the recomputed probabilities match the forward's.
 */
final class PanamaBackwardOps implements BackwardOps {
  private static final VectorSpecies<Float> F = PanamaSpecies.FLOAT;
  private static final int L = F.length();

  @Override
  public String name() {
    return "panama-" + F.vectorBitSize() + "bit";
  }

  @Override
  public int lanes() {
    return L;
  }

  @Override
  public void probabilities(float[] a, int off, int stride, int rows, int cols, float[] lse2) {
    for (int c = 0; c < cols; c += L) {
      FloatVector sh = FloatVector.fromArray(F, lse2, c);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        // Written out, not in a helper: a vector crossing a call C2 did not inline is boxed.
        // max(-127) maps -inf (masked score, or lse2 = +inf) to 2^-127, which the exponent
        // trick below turns into exactly 0. The upper clamp keeps 2^x finite when rounding puts
        // a score a hair above its log-sum-exp.
        FloatVector x = FloatVector.fromArray(F, a, i).sub(sh).max(-127f).min(1f);
        FloatVector t = x.add(ROUNDER);
        FloatVector f = x.sub(t.sub(ROUNDER));
        FloatVector p = f.fma(C5, C4);
        p = p.fma(f, FloatVector.broadcast(F, C3));
        p = p.fma(f, FloatVector.broadcast(F, C2));
        p = p.fma(f, FloatVector.broadcast(F, C1));
        p = p.fma(f, FloatVector.broadcast(F, 1f));
        IntVector bits =
            ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
        p.mul((FloatVector) bits.reinterpretAsFloats()).intoArray(a, i);
      }
    }
  }

  @Override
  public void softmaxGrad(float[] p, float[] dp, int off, int stride, int rows, int cols,
      float[] d) {
    for (int c = 0; c < cols; c += L) {
      FloatVector dv = FloatVector.fromArray(F, d, c);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        FloatVector.fromArray(F, dp, i).sub(dv).mul(FloatVector.fromArray(F, p, i))
            .intoArray(dp, i);
      }
    }
  }
}
