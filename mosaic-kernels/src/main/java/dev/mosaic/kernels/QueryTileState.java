package dev.mosaic.kernels;

import java.util.Arrays;

/**
 * What one tile of queries carries through {@link CpuFlashAttention}'s walk over the keys: its
 * scaled Qᵀ, the un-normalised Oᵀ, and each query's reference max and running sum (the online
 * softmax). Reused call after call by one thread.
 */
final class QueryTileState {
  private final int tile;
  /** Qᵀ (headDim × width), scaled; padded query columns are zero. */
  float[] qt = new float[0];
  /** Oᵀ (headDim × width), not yet divided by the sums. */
  float[] acc = new float[0];
  final float[] max;
  /** What the exponentials subtract: the max as of the last rescale (kept from tile to tile). */
  final float[] shift;
  final float[] sum;
  /** The sums as they entered the key tile being processed (to undo a one-pass attempt). */
  final float[] sumEntry;
  int q0;
  int rows;
  int width;
  int headDim;
  /** Keys [0, keyEnd) are visible to some query of the tile. */
  int keyEnd;

  QueryTileState(int tile) {
    this.tile = tile;
    this.max = new float[tile];
    this.shift = new float[tile];
    this.sum = new float[tile];
    this.sumEntry = new float[tile];
  }

  void ensure(int d) {
    if (qt.length < d * tile) {
      qt = new float[d * tile];
      acc = new float[d * tile];
    }
  }

  /** Loads the tile's queries (rows q0.. of head h), scaled, and resets its softmax state. */
  void start(BlockView q, int b, int h, int q0, int rows, int width, float qScale, int keyEnd) {
    int d = q.headDim();
    this.q0 = q0;
    this.rows = rows;
    this.width = width;
    this.headDim = d;
    this.keyEnd = keyEnd;
    float[] qd = q.data();
    Arrays.fill(qt, 0, d * width, 0f);
    for (int r = 0; r < rows; r++) {
      int src = q.index(b, q0 + r, h);
      for (int c = 0; c < d; c++) {
        qt[c * width + r] = qd[src + c] * qScale;
      }
    }
    Arrays.fill(max, 0, width, Float.NEGATIVE_INFINITY);
    Arrays.fill(sum, 0, width, 0f);
    Arrays.fill(acc, 0, d * width, 0f);
  }

  /**
   * Writes O = Oᵀ / sum back in row layout and each query's lse (natural log) at {@code lseBase}
   * plus its index in {@code out}; a query that saw no key gets zeros and -inf.
   */
  void finish(BlockView out, float[] lse, int b, int h, int lseBase) {
    float[] od = out.data();
    int d = headDim;
    for (int r = 0; r < rows; r++) {
      int dst = out.index(b, q0 + r, h);
      int li = lseBase + (b * out.seq() + q0 + r) * out.heads() + h;
      if (sum[r] == 0f) {
        Arrays.fill(od, dst, dst + d, 0f);
        lse[li] = Float.NEGATIVE_INFINITY;
      } else {
        float inv = 1f / sum[r];
        for (int c = 0; c < d; c++) {
          od[dst + c] = acc[c * width + r] * inv;
        }
        lse[li] = (max[r] + (float) (Math.log(sum[r]) / Math.log(2))) * CpuFlashAttention.LN2;
      }
    }
  }
}
