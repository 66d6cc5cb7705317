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
 * SIMD loops on the incubating Vector API. Only {@link VectorizationProvider} instantiates this
 * class, by reflection, after checking that {@code jdk.incubator.vector} is in the boot layer:
 * nothing else may reference it, so JVMs without the module never load it.
 *
 * <p>The GEMM is register blocked by a {@link GemmTile} chosen from the vector width and the
 * register file (AVX2: 6 rows × 2 vectors; AVX-512: 6 × 4), so the accumulators, the loaded B
 * vectors and the broadcast A value all stay in registers; the micro-kernels are in
 * {@link PanamaGemmBlocks}.
 */
final class PanamaFlashOps implements FlashOps {
  private static final VectorSpecies<Float> F = PanamaSpecies.FLOAT;
  private static final int L = F.length();
  /** The query tile of CpuFlashAttention: the attention GEMMs' column count. */
  private static final int QUERY_TILE = 64;

  private final GemmTile tile;

  PanamaFlashOps() {
    this(defaultTile());
  }

  PanamaFlashOps(GemmTile tile) {
    this.tile = tile;
  }

  /** {@code -Dmosaic.simd.tile}, else the best fit for this machine's register file. */
  static GemmTile defaultTile() {
    String forced = System.getProperty("mosaic.simd.tile", "");
    if (!forced.isBlank() && !forced.equalsIgnoreCase("auto")) {
      return GemmTile.parse(forced);
    }
    return GemmTile.choose(registers(), QUERY_TILE / L);
  }

  /**
   * Vector registers C2 allocates from: 32 where it emits AVX-512 (its preferred vector is then
   * 512 bits, also when -Dmosaic.simd.bits narrows ours), 16 with AVX2 (-XX:UseAVX=2 included).
   */
  static int registers() {
    return FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512 ? 32 : 16;
  }

  /** How the GEMM is blocked, for the start-up log line. */
  @Override
  public String describe() {
    return "GEMM tile " + tile + " (" + registers() + " vector registers)";
  }

  GemmTile tile() {
    return tile;
  }

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
    int vectors = cols / L;
    int r = 0;
    while (r < rows) {
      // Full tiles of rows, then the largest smaller block that fits the rest.
      int rb = rows - r >= tile.rows() ? tile.rows() : GemmTile.rowsAtMost(rows - r);
      int v = 0;
      while (v < vectors) {
        int vb = vectors - v >= tile.vectors() ? tile.vectors()
            : GemmTile.vectorsAtMost(vectors - v);
        int a0 = aOff + r * aStride;
        int b0 = bOff + v * L;
        int c0 = cOff + r * cStride + v * L;
        // C = A·B (the score GEMM): C zeroed, then accumulated; with OVERWRITE the default tiles
        // overwrite C from their first step instead. Branches out here, between calls, never
        // inside the vector code, whose flipping profile would make C2 deoptimise (and box every
        // vector) over and over.
        if (accumulate) {
          PanamaGemmBlocks.block(rb, vb, a, a0, aStride, depth, b, b0, bStride, c, c0, cStride);
        } else if (OVERWRITE && rb == 6 && vb == 4) {
          PanamaGemmBlocks.overwrite6x4(a, a0, aStride, depth, b, b0, bStride, c, c0, cStride);
        } else if (OVERWRITE && rb == 6 && vb == 2) {
          PanamaGemmBlocks.overwrite6x2(a, a0, aStride, depth, b, b0, bStride, c, c0, cStride);
        } else {
          zero(c, c0, cStride, rb, vb * L);
          PanamaGemmBlocks.block(rb, vb, a, a0, aStride, depth, b, b0, bStride, c, c0, cStride);
        }
        v += vb;
      }
      r += rb;
    }
  }

  /**
   * The overwriting score blocks ({@code -Dmosaic.simd.overwriteScores=true}). Off by default: on
   * a quiet Zen 5, 4 of 30 benchmark JVMs with them ran the whole kernel ~10x slower (JFR: 76% of
   * the time in overwrite6x4, a 106.6 kB C2 compile), 0 of 21 without them, which were as fast
   * otherwise (docs/performance.md, "occasional slow JVMs").
   */
  static final boolean OVERWRITE = Boolean.getBoolean("mosaic.simd.overwriteScores");

  /** {@code C[r][c] = 0} for {@code r < rows}, {@code c < cols} (a multiple of L). */
  private static void zero(float[] c, int off, int stride, int rows, int cols) {
    FloatVector z = FloatVector.zero(F);
    for (int r = 0, i = off; r < rows; r++, i += stride) {
      for (int j = 0; j < cols; j += L) {
        z.intoArray(c, i + j);
      }
    }
  }

  @Override
  public void colMax(float[] a, int off, int stride, int rows, int cols, float[] m) {
    // Four column vectors at once: a single running max per column would wait out vmaxps's
    // latency (4 cycles) on every row; four independent ones keep the loads flowing.
    int c = 0;
    for (; c + 4 * L <= cols; c += 4 * L) {
      FloatVector m0 = FloatVector.fromArray(F, m, c);
      FloatVector m1 = FloatVector.fromArray(F, m, c + L);
      FloatVector m2 = FloatVector.fromArray(F, m, c + 2 * L);
      FloatVector m3 = FloatVector.fromArray(F, m, c + 3 * L);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        m0 = m0.max(FloatVector.fromArray(F, a, i));
        m1 = m1.max(FloatVector.fromArray(F, a, i + L));
        m2 = m2.max(FloatVector.fromArray(F, a, i + 2 * L));
        m3 = m3.max(FloatVector.fromArray(F, a, i + 3 * L));
      }
      m0.intoArray(m, c);
      m1.intoArray(m, c + L);
      m2.intoArray(m, c + 2 * L);
      m3.intoArray(m, c + 3 * L);
    }
    for (; c < cols; c += L) {
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
        // 2^x for x <= 8 as 2^n * p(f), n = round(x), f = x - n. Written out here rather than
        // in a helper: a FloatVector crossing a call C2 did not inline is boxed on every use.
        FloatVector x = FloatVector.fromArray(F, a, i).sub(sh).max(-127f);
        FloatVector t = x.add(ROUNDER);
        FloatVector f = x.sub(t.sub(ROUNDER));
        FloatVector p = f.fma(C5, C4);
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
  public boolean exp2ColumnsTrackingMax(float[] a, int off, int stride, int rows, int cols,
      float[] shift, float[] sum, float[] max, float slack) {
    boolean passed = false;
    for (int c = 0; c < cols; c += L) {
      FloatVector sh = FloatVector.fromArray(F, shift, c);
      FloatVector acc = FloatVector.fromArray(F, sum, c);
      FloatVector mx = FloatVector.fromArray(F, max, c);
      for (int r = 0, i = off + c; r < rows; r++, i += stride) {
        // exp2Columns' loop (same operations, same bits), with the max of the raw score; one max
        // chain per column vector is fine here: the 2^x next to it is ~15 independent ops.
        FloatVector s = FloatVector.fromArray(F, a, i);
        mx = mx.max(s);
        FloatVector x = s.sub(sh).max(-127f);
        FloatVector t = x.add(ROUNDER);
        FloatVector f = x.sub(t.sub(ROUNDER));
        FloatVector p = f.fma(C5, C4);
        p = p.fma(f, FloatVector.broadcast(F, C3));
        p = p.fma(f, FloatVector.broadcast(F, C2));
        p = p.fma(f, FloatVector.broadcast(F, C1));
        p = p.fma(f, FloatVector.broadcast(F, 1f));
        IntVector bits =
            ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector e = p.mul((FloatVector) bits.reinterpretAsFloats());
        e.intoArray(a, i);
        acc = acc.add(e);
      }
      acc.intoArray(sum, c);
      // the entry value reloaded, not kept live: AVX2's 16 registers are full in the loop
      passed |= mx.compare(VectorOperators.GT, FloatVector.fromArray(F, max, c).add(slack))
          .anyTrue();
      mx.intoArray(max, c);
    }
    return passed;
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

  @Override
  public void gelu(float[] x, int off, int n) {
    int end = off + n;
    int i = off;
    for (; i + L <= end; i += L) {
      FloatVector v = FloatVector.fromArray(F, x, i);
      v.mul(0.5f).mul(erf(v.mul(ErfPolynomial.INV_SQRT2)).add(1f)).intoArray(x, i);
    }
    for (; i < end; i++) {
      x[i] = ErfPolynomial.gelu(x[i]);
    }
  }

  @Override
  public void geluBackward(float[] x, float[] dy, float[] dx, int n) {
    int i = 0;
    for (; i + L <= n; i += L) {
      // ErfPolynomial.geluDerivative lane by lane: Φ(x) + x·φ(x), φ through the 2^x polynomial
      FloatVector v = FloatVector.fromArray(F, x, i);
      FloatVector cdf = erf(v.mul(ErfPolynomial.INV_SQRT2)).add(1f).mul(0.5f);
      FloatVector arg = v.mul(v).mul(ErfPolynomial.MINUS_HALF_LOG2E)
          .max(ErfPolynomial.EXP2_FLOOR);
      FloatVector pdf = exp2NonPositive(arg).mul(ErfPolynomial.INV_SQRT_2PI);
      FloatVector.fromArray(F, dy, i).mul(v.fma(pdf, cdf)).intoArray(dx, i);
    }
    for (; i < n; i++) {
      dx[i] = dy[i] * ErfPolynomial.geluDerivative(x[i]);
    }
  }

  /**
   * ErfPolynomial.erf lane by lane (same operations, same bits); both fits are evaluated and
   * blended, which costs less than branching per lane. Small enough for C2 to inline into the hot
   * loops (a vector crossing a call that is not inlined is boxed).
   */
  private static FloatVector erf(FloatVector z) {
    FloatVector a = z.abs();
    FloatVector a2 = a.mul(a);
    FloatVector small = FloatVector.broadcast(F, ErfPolynomial.P6);
    small = small.fma(a2, FloatVector.broadcast(F, ErfPolynomial.P5));
    small = small.fma(a2, FloatVector.broadcast(F, ErfPolynomial.P4));
    small = small.fma(a2, FloatVector.broadcast(F, ErfPolynomial.P3));
    small = small.fma(a2, FloatVector.broadcast(F, ErfPolynomial.P2));
    small = small.fma(a2, FloatVector.broadcast(F, ErfPolynomial.P1));
    small = small.fma(a2, FloatVector.broadcast(F, ErfPolynomial.P0_MINUS_1));
    small = a.fma(small, a);
    FloatVector c = a.min(ErfPolynomial.LIMIT);
    FloatVector u = c.sub(ErfPolynomial.MID).mul(ErfPolynomial.INV_HALF);
    FloatVector r = FloatVector.broadcast(F, ErfPolynomial.R9);
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R8));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R7));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R6));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R5));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R4));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R3));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R2));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R1));
    r = r.fma(u, FloatVector.broadcast(F, ErfPolynomial.R0));
    // 2^(−c²·log2 e), c² <= 15.4
    FloatVector large = FloatVector.broadcast(F, 1f)
        .sub(exp2NonPositive(c.mul(c).mul(ErfPolynomial.MINUS_LOG2E)).mul(r));
    FloatVector e = large.blend(small, a.lt(ErfPolynomial.SPLIT))
        .blend(1f, a.compare(VectorOperators.GE, ErfPolynomial.LIMIT));
    // copysign(e, z): e >= 0, so or-ing in z's sign bit is enough
    IntVector sign = ((IntVector) z.reinterpretAsInts()).and(0x80000000);
    return (FloatVector) ((IntVector) e.reinterpretAsInts()).or(sign).reinterpretAsFloats();
  }

  /** 2^x for x in [−126, 0]: exp2Columns' polynomial (ErfPolynomial.exp2NonPositive per lane). */
  private static FloatVector exp2NonPositive(FloatVector x) {
    FloatVector t = x.add(ROUNDER);
    FloatVector f = x.sub(t.sub(ROUNDER));
    FloatVector p = f.fma(C5, C4);
    p = p.fma(f, FloatVector.broadcast(F, C3));
    p = p.fma(f, FloatVector.broadcast(F, C2));
    p = p.fma(f, FloatVector.broadcast(F, C1));
    p = p.fma(f, FloatVector.broadcast(F, 1f));
    IntVector bits =
        ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
    return p.mul((FloatVector) bits.reinterpretAsFloats());
  }
}
