package dev.mosaic.kernels;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * How a varlen call splits over threads: into units of (sequence, head, a run of query tiles),
 * balanced by cost, not by count. A tile costs its padded query columns times the keys it can
 * see (so a causal tile near the start is cheap) plus a fixed overhead: attention of a sequence
 * costs ∝ n². Runs of tiles are cut so that no unit exceeds a share of the total that lets the
 * threads even out, and units are handed out most expensive first (greedy LPT: the busiest thread
 * ends at most one unit after the average). The split never changes the numbers: every query
 * tile is computed the same way whichever unit holds it.
 */
final class VarlenWork {
  /** Per-tile overhead in score cells per query column (packing Q, writing O): keeps a
   * one-token sequence from counting as free. */
  static final int TILE_OVERHEAD_KEYS = 32;
  /** Units per thread to aim for when cutting long sequences: leaves room to balance. */
  static final int UNITS_PER_THREAD = 4;

  /** Query tiles {@code [tileFrom, tileTo)} of one head of one sequence. */
  record Unit(int seq, int head, int tileFrom, int tileTo, long cost) {}

  private VarlenWork() {}

  static Unit[] plan(VarlenSequences seqs, int heads, AttentionMask base, int queryTile,
      int lanes, int threads) {
    int count = seqs.count();
    long[][] tileCosts = new long[count][];
    long total = 0;
    for (int s = 0; s < count; s++) {
      tileCosts[s] = tileCosts(seqs.queries(s), seqs.keys(s), seqs.mask(s, base), queryTile,
          lanes);
      for (long c : tileCosts[s]) {
        total += c * heads;
      }
    }
    long cap = threads == 1 ? Long.MAX_VALUE
        : Math.max(1, total / ((long) threads * UNITS_PER_THREAD));
    List<Unit> units = new ArrayList<>();
    for (int s = 0; s < count; s++) {
      long[] costs = tileCosts[s];
      for (int h = 0; h < heads; h++) {
        int from = 0;
        long acc = 0;
        for (int t = 0; t < costs.length; t++) {
          acc += costs[t];
          if (acc >= cap || t == costs.length - 1) {
            units.add(new Unit(s, h, from, t + 1, acc));
            from = t + 1;
            acc = 0;
          }
        }
      }
    }
    Unit[] out = units.toArray(new Unit[0]);
    // Stable: equal costs keep (sequence, head, tile) order, so a run is reproducible.
    Arrays.sort(out, Comparator.comparingLong(Unit::cost).reversed());
    return out;
  }

  /** The cost of each query tile of one sequence under its mask. */
  static long[] tileCosts(int queries, int keys, AttentionMask mask, int queryTile, int lanes) {
    int tiles = (queries + queryTile - 1) / queryTile;
    long[] costs = new long[tiles];
    for (int t = 0; t < tiles; t++) {
      int q0 = t * queryTile;
      int rows = Math.min(queryTile, queries - q0);
      int width = (rows + lanes - 1) / lanes * lanes;
      costs[t] = (long) width * (mask.visibleKeyEnd(q0, q0 + rows, keys) + TILE_OVERHEAD_KEYS);
    }
    return costs;
  }
}
