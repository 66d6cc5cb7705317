#!/usr/bin/env python3
"""Writes PanamaGemmBlocks.java: the register-blocked GEMM micro-kernels (R rows of A x C vectors
of B, R*C accumulators) for every (R, C) the tile shapes use, and PanamaScoreBlocks.java: the same
blocks for the attention's score GEMM, which start from zero (no load of C) and fold the column
maxima of the block into m as they store it (no second pass over the scores). Hand-unrolled because a FloatVector
in an array or crossing a non-inlined call is boxed. Run from the repository root:
  python3 tools/codegen/gemm_blocks.py"""
ROWS = [8, 6, 4, 2, 1]
COLS = [4, 3, 2, 1]
OUT = "mosaic-kernels/src/main/java/dev/mosaic/kernels/simd/PanamaGemmBlocks.java"
OUT_SCORES = "mosaic-kernels/src/main/java/dev/mosaic/kernels/simd/PanamaScoreBlocks.java"


def block(r, c):
    L = []
    L.append(f"  /** {r} rows x {c} vectors: {r * c} accumulators, {c} loads + {r} broadcasts per step. */")
    L.append(f"  static void block{r}x{c}(float[] a, int a0, int aStride, int depth, float[] b, int b0,")
    L.append(f"      int bStride, float[] c, int c0, int cStride) {{")
    for i in range(1, r):
        L.append(f"    int a{i} = a{i - 1} + aStride;")
    for i in range(1, r):
        L.append(f"    int c{i} = c{i - 1} + cStride;")
    for i in range(r):
        for j in range(c):
            off = f"c{i}" + (f" + {j} * L" if j else "")
            L.append(f"    FloatVector s{i}{j} = FloatVector.fromArray(F, c, {off});")
    L.append("    for (int k = 0, bi = b0; k < depth; k++, bi += bStride) {")
    for j in range(c):
        off = "bi" + (f" + {j} * L" if j else "")
        L.append(f"      FloatVector v{j} = FloatVector.fromArray(F, b, {off});")
    for i in range(r):
        L.append(f"      {'FloatVector ' if i == 0 else ''}x = FloatVector.broadcast(F, a[a{i} + k]);")
        for j in range(c):
            L.append(f"      s{i}{j} = x.fma(v{j}, s{i}{j});")
    L.append("    }")
    for i in range(r):
        for j in range(c):
            off = f"c{i}" + (f" + {j} * L" if j else "")
            L.append(f"    s{i}{j}.intoArray(c, {off});")
    L.append("  }")
    return "\n".join(L)


def score_block(r, c):
    L = []
    L.append(f"  /** {r} rows x {c} vectors, C overwritten (depth >= 1), column maxima into m. */")
    L.append(f"  static void block{r}x{c}(float[] a, int a0, int aStride, int depth, float[] b, int b0,")
    L.append(f"      int bStride, float[] c, int c0, int cStride, float[] m, int m0) {{")
    for i in range(1, r):
        L.append(f"    int a{i} = a{i - 1} + aStride;")
    for i in range(1, r):
        L.append(f"    int c{i} = c{i - 1} + cStride;")
    # The first step of the depth (depth >= 1) multiplies instead of adding to zero: C2 compiles
    # accumulators started from FloatVector.zero about twice slower.
    for j in range(c):
        off = "b0" + (f" + {j} * L" if j else "")
        L.append(f"    FloatVector w{j} = FloatVector.fromArray(F, b, {off});")
    for i in range(r):
        L.append(f"    {'FloatVector ' if i == 0 else ''}y = FloatVector.broadcast(F, a[a{i}]);")
        for j in range(c):
            L.append(f"    FloatVector s{i}{j} = y.mul(w{j});")
    L.append("    for (int k = 1, bi = b0 + bStride; k < depth; k++, bi += bStride) {")
    for j in range(c):
        off = "bi" + (f" + {j} * L" if j else "")
        L.append(f"      FloatVector v{j} = FloatVector.fromArray(F, b, {off});")
    for i in range(r):
        L.append(f"      {'FloatVector ' if i == 0 else ''}x = FloatVector.broadcast(F, a[a{i} + k]);")
        for j in range(c):
            L.append(f"      s{i}{j} = x.fma(v{j}, s{i}{j});")
    L.append("    }")
    for i in range(r):
        for j in range(c):
            off = f"c{i}" + (f" + {j} * L" if j else "")
            L.append(f"    s{i}{j}.intoArray(c, {off});")
    for j in range(c):
        moff = "m0" + (f" + {j} * L" if j else "")
        expr = "FloatVector.fromArray(F, m, " + moff + ")"
        for i in range(r):
            expr += f".max(s{i}{j})"
        L.append(f"    {expr}.intoArray(m, {moff});")
    L.append("  }")
    return "\n".join(L)


def score_dispatch():
    L = ["  /** Runs the {@code rows x cols} block at the given corner. */",
         "  static void block(int rows, int cols, float[] a, int a0, int aStride, int depth, float[] b,",
         "      int b0, int bStride, float[] c, int c0, int cStride, float[] m, int m0) {",
         "    switch (rows * 8 + cols) {"]
    for r in ROWS:
        for c in COLS:
            L.append(f"      case {r * 8 + c} -> block{r}x{c}(a, a0, aStride, depth, b, b0, bStride, c, c0, cStride, m, m0);")
    L.append('      default -> throw new IllegalArgumentException("no " + rows + "x" + cols + " block");')
    L.append("    }")
    L.append("  }")
    return "\n".join(L)


def dispatch():
    L = ["  /** Runs the {@code rows x cols} block at the given corner. */",
         "  static void block(int rows, int cols, float[] a, int a0, int aStride, int depth, float[] b,",
         "      int b0, int bStride, float[] c, int c0, int cStride) {",
         "    switch (rows * 8 + cols) {"]
    for r in ROWS:
        for c in COLS:
            L.append(f"      case {r * 8 + c} -> block{r}x{c}(a, a0, aStride, depth, b, b0, bStride, c, c0, cStride);")
    L.append('      default -> throw new IllegalArgumentException("no " + rows + "x" + cols + " block");')
    L.append("    }")
    L.append("  }")
    return "\n".join(L)


src = """package dev.mosaic.kernels.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

// GENERATED by tools/codegen/gemm_blocks.py; edit the generator, not this file.

/**
 * GEMM micro-kernels {@code C[R rows][C vectors] += A[R rows][depth] · B[depth][C vectors]}: per
 * step of the depth, C vectors of B are loaded, each of the R scalars of A is broadcast and
 * multiplied into its row of accumulators. Which (R, C) a GEMM uses is a {@link GemmTile}. Every
 * vector stays a local of one method: one that crossed a call C2 did not inline would be boxed.
 */
final class PanamaGemmBlocks {
  private static final VectorSpecies<Float> F = PanamaSpecies.FLOAT;
  private static final int L = F.length();

  private PanamaGemmBlocks() {}

DISPATCH

""".replace("DISPATCH", dispatch()) + "\n\n".join(block(r, c) for r in ROWS for c in COLS) + "\n}\n"
open(OUT, "w").write(src)
print("wrote", OUT, len(src.splitlines()), "lines")

scores = """package dev.mosaic.kernels.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

// GENERATED by tools/codegen/gemm_blocks.py; edit the generator, not this file.

/**
 * The attention's score micro-kernels {@code C[R rows][C vectors] = A[R rows][depth] · B[depth][C
 * vectors]}, {@code m[C vectors] = max(m, column maxima of C)}: {@link PanamaGemmBlocks}' blocks
 * started from zero instead of loaded from C, with the softmax's column maxima taken from the
 * registers as they are stored (no second pass over the scores).
 */
final class PanamaScoreBlocks {
  private static final VectorSpecies<Float> F = PanamaSpecies.FLOAT;
  private static final int L = F.length();

  private PanamaScoreBlocks() {}

DISPATCH

""".replace("DISPATCH", score_dispatch()) + "\n\n".join(score_block(r, c) for r in ROWS for c in COLS) + "\n}\n"
open(OUT_SCORES, "w").write(scores)
print("wrote", OUT_SCORES, len(scores.splitlines()), "lines")
