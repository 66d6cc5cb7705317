package dev.mosaic.kernels;

import java.util.Arrays;

/**
 * One (batch, head)'s query-side operands of the attention backward, packed once per head so each
 * of the head's key tiles reads them contiguously, tile by tile of
 * {@value CpuFlashAttention#QUERY_TILE} queries:
 * <ul>
 *   <li>{@code qt}, {@code dot}: Qᵀ (scaled by {@code scale·log2 e}, as the forward packs it) and
 *       dOᵀ, {@code (headDim, QUERY_TILE)} per tile, right-hand sides of the score products;
 *   <li>{@code q}, {@code dO}: Q and dO row by row, padded to {@code dPad} columns (a whole number
 *       of vectors), right-hand sides of the dK and dV products;
 *   <li>{@code lse2}: the log-sum-exp in base 2, {@code +inf} for padding and for queries that see
 *       no key (so their recomputed P is 0); {@code d}: {@code D = rowsum(dO∘O)}.
 * </ul>
 * Padding is zero (or +inf) from construction and never written, so a pack is reused across heads.
 */
final class HeadPack {
  private static final int T = CpuFlashAttention.QUERY_TILE;

  final int seqQ;
  final int d;
  final int dPad;
  final float[] qt;
  final float[] dot;
  final float[] q;
  final float[] dO;
  private final float[][] lse2;
  private final float[][] rowDots;
  int b;
  int h;
  /** The K/V head query head {@code h} reads (grouped-query attention; else {@code h}). */
  int kvh;

  HeadPack(int seqQ, int d, int lanes) {
    this.seqQ = seqQ;
    this.d = d;
    this.dPad = CpuFlashAttention.roundUp(d, lanes);
    int tiles = queryTiles();
    qt = new float[Math.multiplyExact(tiles * d, T)];
    dot = new float[qt.length];
    q = new float[Math.multiplyExact(tiles * T, dPad)];
    dO = new float[q.length];
    lse2 = new float[tiles][T];
    rowDots = new float[tiles][T];
    for (float[] l : lse2) {
      Arrays.fill(l, Float.POSITIVE_INFINITY);
    }
  }

  boolean fits(int seqQ, int d, int lanes) {
    return this.seqQ == seqQ && this.d == d && dPad == CpuFlashAttention.roundUp(d, lanes);
  }

  int queryTiles() {
    return (seqQ + T - 1) / T;
  }

  /** Size of a transposed dQ accumulator for this head: {@code (headDim, QUERY_TILE)} per tile. */
  int dqSize() {
    return queryTiles() * d * T;
  }

  float[] lse2Tile(int tile) {
    return lse2[tile];
  }

  float[] dTile(int tile) {
    return rowDots[tile];
  }

  /** Packs head {@code (b, h)} of the problem's Q, dO, O and LSE. */
  void load(CpuFlashAttentionBackward.Problem p, int b, int h, float log2e) {
    this.b = b;
    this.h = h;
    this.kvh = AttentionKernel.kvHead(h, p.q().heads(), p.k().heads());
    float qScale = p.scale() * log2e;
    float[] qd = p.q().data();
    float[] gd = p.dOut().data();
    float[] od = p.out().data();
    int heads = p.q().heads();
    for (int i = 0; i < seqQ; i++) {
      int tile = i / T;
      int col = i % T;
      int qi = p.q().index(b, i, h);
      int gi = p.dOut().index(b, i, h);
      int oi = p.out().index(b, i, h);
      int t0 = tile * d * T + col;
      double rowDot = 0;
      for (int c = 0; c < d; c++) {
        float g = gd[gi + c];
        qt[t0 + c * T] = qd[qi + c] * qScale;
        dot[t0 + c * T] = g;
        q[i * dPad + c] = qd[qi + c];
        dO[i * dPad + c] = g;
        rowDot += (double) g * od[oi + c];
      }
      float lse = p.lse()[(b * seqQ + i) * heads + h];
      lse2[tile][col] = lse == Float.NEGATIVE_INFINITY ? Float.POSITIVE_INFINITY : lse * log2e;
      rowDots[tile][col] = (float) rowDot;
    }
  }

  /**
   * Adds {@code scale·acc} (a transposed dQ accumulator of this head) into the problem's dq, for
   * query tiles {@code [fromTile, toTile)}.
   */
  void addQueryGradient(CpuFlashAttentionBackward.Problem p, float[] acc, int fromTile,
      int toTile) {
    float[] dq = p.dq().data();
    float scale = p.scale();
    for (int i = fromTile * T; i < Math.min(seqQ, toTile * T); i++) {
      int dst = p.dq().index(b, i, h);
      int src = (i / T) * d * T + i % T;
      for (int c = 0; c < d; c++) {
        dq[dst + c] += acc[src + c * T] * scale;
      }
    }
  }
}
