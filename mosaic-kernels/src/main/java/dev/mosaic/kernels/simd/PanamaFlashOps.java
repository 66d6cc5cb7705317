package dev.mosaic.kernels.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * SIMD loops on the incubating Vector API. Only {@link VectorizationProvider} instantiates this
 * class, by reflection, after checking that {@code jdk.incubator.vector} is in the boot layer:
 * nothing else may reference it, so JVMs without the module never load it.
 *
 * <p>The GEMM is register blocked 4 rows × 4 vectors (16 accumulators): per step of {@code k} it
 * loads 4 vectors of B, broadcasts 4 scalars of A and issues 16 FMAs, which keeps the FMA units
 * fed from L1.
 */
final class PanamaFlashOps implements FlashOps {
  private static final VectorSpecies<Float> F = PanamaSpecies.FLOAT;
  private static final int L = F.length();

  // 2^f on f in [-0.5, 0.5]: Taylor series of e^{f ln 2} to degree 6 (relative error < 2e-7).
  private static final float C1 = 0.6931471805599453f;
  private static final float C2 = 0.2402265069591007f;
  private static final float C3 = 0.05550410866482158f;
  private static final float C4 = 0.009618129107628477f;
  private static final float C5 = 0.0013333558146428443f;
  private static final float C6 = 1.5403530393381606e-4f;
  /** 1.5·2^23: adding it rounds a float in (−2^22, 2^22) to an integer kept in the low bits. */
  private static final float ROUNDER = 12582912f;

  @Override
  public String name() {
    return "panama-" + F.vectorBitSize() + "bit";
  }

  @Override
  public int lanes() {
    return L;
  }

  @Override
  public void gemm(float[] a, int aOff, int aStride, int rows, int depth, float[] b, int bOff,
      int bStride, float[] c, int cOff, int cStride, int cols, boolean accumulate) {
    if (!accumulate) {
      // Zero C here so the blocks below always load it: no branch inside the vector code, whose
      // flipping profile would make C2 deoptimise (and box every vector) over and over.
      for (int r = 0; r < rows; r++) {
        java.util.Arrays.fill(c, cOff + r * cStride, cOff + r * cStride + cols, 0f);
      }
    }
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
      int col = 0;
      for (; col + 4 * L <= cols; col += 4 * L) {
        block4x4(a, aOff + r * aStride, aStride, depth, b, bOff + col, bStride, c,
            cOff + r * cStride + col, cStride);
      }
      for (; col < cols; col += L) {
        block4x1(a, aOff + r * aStride, aStride, depth, b, bOff + col, bStride, c,
            cOff + r * cStride + col, cStride);
      }
    }
    for (; r < rows; r++) {
      int col = 0;
      for (; col + 4 * L <= cols; col += 4 * L) {
        block1x4(a, aOff + r * aStride, depth, b, bOff + col, bStride, c, cOff + r * cStride + col);
      }
      for (; col < cols; col += L) {
        block1x1(a, aOff + r * aStride, depth, b, bOff + col, bStride, c, cOff + r * cStride + col);
      }
    }
  }

  private static void block4x4(float[] a, int a0, int aStride, int depth, float[] b, int b0,
      int bStride, float[] c, int c0, int cStride) {
    int a1 = a0 + aStride;
    int a2 = a1 + aStride;
    int a3 = a2 + aStride;
    int c1 = c0 + cStride;
    int c2 = c1 + cStride;
    int c3 = c2 + cStride;
    FloatVector s00 = FloatVector.fromArray(F, c, c0);
    FloatVector s01 = FloatVector.fromArray(F, c, c0 + L);
    FloatVector s02 = FloatVector.fromArray(F, c, c0 + 2 * L);
    FloatVector s03 = FloatVector.fromArray(F, c, c0 + 3 * L);
    FloatVector s10 = FloatVector.fromArray(F, c, c1);
    FloatVector s11 = FloatVector.fromArray(F, c, c1 + L);
    FloatVector s12 = FloatVector.fromArray(F, c, c1 + 2 * L);
    FloatVector s13 = FloatVector.fromArray(F, c, c1 + 3 * L);
    FloatVector s20 = FloatVector.fromArray(F, c, c2);
    FloatVector s21 = FloatVector.fromArray(F, c, c2 + L);
    FloatVector s22 = FloatVector.fromArray(F, c, c2 + 2 * L);
    FloatVector s23 = FloatVector.fromArray(F, c, c2 + 3 * L);
    FloatVector s30 = FloatVector.fromArray(F, c, c3);
    FloatVector s31 = FloatVector.fromArray(F, c, c3 + L);
    FloatVector s32 = FloatVector.fromArray(F, c, c3 + 2 * L);
    FloatVector s33 = FloatVector.fromArray(F, c, c3 + 3 * L);
    for (int k = 0, bi = b0; k < depth; k++, bi += bStride) {
      FloatVector v0 = FloatVector.fromArray(F, b, bi);
      FloatVector v1 = FloatVector.fromArray(F, b, bi + L);
      FloatVector v2 = FloatVector.fromArray(F, b, bi + 2 * L);
      FloatVector v3 = FloatVector.fromArray(F, b, bi + 3 * L);
      FloatVector x = FloatVector.broadcast(F, a[a0 + k]);
      s00 = x.fma(v0, s00);
      s01 = x.fma(v1, s01);
      s02 = x.fma(v2, s02);
      s03 = x.fma(v3, s03);
      x = FloatVector.broadcast(F, a[a1 + k]);
      s10 = x.fma(v0, s10);
      s11 = x.fma(v1, s11);
      s12 = x.fma(v2, s12);
      s13 = x.fma(v3, s13);
      x = FloatVector.broadcast(F, a[a2 + k]);
      s20 = x.fma(v0, s20);
      s21 = x.fma(v1, s21);
      s22 = x.fma(v2, s22);
      s23 = x.fma(v3, s23);
      x = FloatVector.broadcast(F, a[a3 + k]);
      s30 = x.fma(v0, s30);
      s31 = x.fma(v1, s31);
      s32 = x.fma(v2, s32);
      s33 = x.fma(v3, s33);
    }
    s00.intoArray(c, c0);
    s01.intoArray(c, c0 + L);
    s02.intoArray(c, c0 + 2 * L);
    s03.intoArray(c, c0 + 3 * L);
    s10.intoArray(c, c1);
    s11.intoArray(c, c1 + L);
    s12.intoArray(c, c1 + 2 * L);
    s13.intoArray(c, c1 + 3 * L);
    s20.intoArray(c, c2);
    s21.intoArray(c, c2 + L);
    s22.intoArray(c, c2 + 2 * L);
    s23.intoArray(c, c2 + 3 * L);
    s30.intoArray(c, c3);
    s31.intoArray(c, c3 + L);
    s32.intoArray(c, c3 + 2 * L);
    s33.intoArray(c, c3 + 3 * L);
  }

  private static void block4x1(float[] a, int a0, int aStride, int depth, float[] b, int b0,
      int bStride, float[] c, int c0, int cStride) {
    int a1 = a0 + aStride;
    int a2 = a1 + aStride;
    int a3 = a2 + aStride;
    FloatVector s0 = FloatVector.fromArray(F, c, c0);
    FloatVector s1 = FloatVector.fromArray(F, c, c0 + cStride);
    FloatVector s2 = FloatVector.fromArray(F, c, c0 + 2 * cStride);
    FloatVector s3 = FloatVector.fromArray(F, c, c0 + 3 * cStride);
    for (int k = 0, bi = b0; k < depth; k++, bi += bStride) {
      FloatVector v = FloatVector.fromArray(F, b, bi);
      s0 = FloatVector.broadcast(F, a[a0 + k]).fma(v, s0);
      s1 = FloatVector.broadcast(F, a[a1 + k]).fma(v, s1);
      s2 = FloatVector.broadcast(F, a[a2 + k]).fma(v, s2);
      s3 = FloatVector.broadcast(F, a[a3 + k]).fma(v, s3);
    }
    s0.intoArray(c, c0);
    s1.intoArray(c, c0 + cStride);
    s2.intoArray(c, c0 + 2 * cStride);
    s3.intoArray(c, c0 + 3 * cStride);
  }

  private static void block1x4(float[] a, int a0, int depth, float[] b, int b0, int bStride,
      float[] c, int c0) {
    FloatVector s0 = FloatVector.fromArray(F, c, c0), s1 = FloatVector.fromArray(F, c, c0 + L);
    FloatVector s2 = FloatVector.fromArray(F, c, c0 + 2 * L), s3 = FloatVector.fromArray(F, c, c0 + 3 * L);
    for (int k = 0, bi = b0; k < depth; k++, bi += bStride) {
      FloatVector x = FloatVector.broadcast(F, a[a0 + k]);
      s0 = x.fma(FloatVector.fromArray(F, b, bi), s0);
      s1 = x.fma(FloatVector.fromArray(F, b, bi + L), s1);
      s2 = x.fma(FloatVector.fromArray(F, b, bi + 2 * L), s2);
      s3 = x.fma(FloatVector.fromArray(F, b, bi + 3 * L), s3);
    }
    s0.intoArray(c, c0);
    s1.intoArray(c, c0 + L);
    s2.intoArray(c, c0 + 2 * L);
    s3.intoArray(c, c0 + 3 * L);
  }

  private static void block1x1(float[] a, int a0, int depth, float[] b, int b0, int bStride,
      float[] c, int c0) {
    FloatVector s = FloatVector.fromArray(F, c, c0);
    for (int k = 0, bi = b0; k < depth; k++, bi += bStride) {
      s = FloatVector.broadcast(F, a[a0 + k]).fma(FloatVector.fromArray(F, b, bi), s);
    }
    s.intoArray(c, c0);
  }

  @Override
  public void colMax(float[] a, int off, int stride, int rows, int cols, float[] m) {
    for (int c = 0; c < cols; c += L) {
      FloatVector mx = FloatVector.fromArray(F, m, c);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        mx = mx.max(FloatVector.fromArray(F, a, i));
      }
      mx.intoArray(m, c);
    }
  }

  @Override
  public void exp2Columns(float[] a, int off, int stride, int rows, int cols, float[] shift,
      float[] sum) {
    for (int c = 0; c < cols; c += L) {
      FloatVector sh = FloatVector.fromArray(F, shift, c);
      FloatVector acc = FloatVector.fromArray(F, sum, c);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        // 2^x for x <= 0 as 2^n * p(f), n = round(x), f = x - n. Written out here rather than
        // in a helper: a FloatVector crossing a call C2 did not inline is boxed on every use.
        FloatVector x = FloatVector.fromArray(F, a, i).sub(sh).max(-127f);
        FloatVector t = x.add(ROUNDER);
        FloatVector f = x.sub(t.sub(ROUNDER));
        FloatVector p = f.fma(C6, C5);
        p = p.fma(f, FloatVector.broadcast(F, C4));
        p = p.fma(f, FloatVector.broadcast(F, C3));
        p = p.fma(f, FloatVector.broadcast(F, C2));
        p = p.fma(f, FloatVector.broadcast(F, C1));
        p = p.fma(f, FloatVector.broadcast(F, 1f));
        // The low mantissa bits of t hold n in two's complement; (n + 127) << 23 is 2^n, and 0
        // for n = -127 (so -inf and anything below -126.5 give 0).
        IntVector bits =
            ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector e = p.mul((FloatVector) bits.reinterpretAsFloats());
        e.intoArray(a, i);
        acc = acc.add(e);
      }
      acc.intoArray(sum, c);
    }
  }

  @Override
  public void scaleColumns(float[] a, int off, int stride, int rows, int cols, float[] f) {
    for (int c = 0; c < cols; c += L) {
      FloatVector fv = FloatVector.fromArray(F, f, c);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        FloatVector.fromArray(F, a, i).mul(fv).intoArray(a, i);
      }
    }
  }
}
