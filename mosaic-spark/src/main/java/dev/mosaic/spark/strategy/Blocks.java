package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.BlockView;

/**
 * Copies between strided {@link BlockView}s and the contiguous {@code (batch, rows, heads,
 * headDim)} arrays that travel through a communicator. Collectives move flat float arrays, so every
 * block is packed before it is sent and viewed in place after it arrives.
 */
final class Blocks {
  static final float[] EMPTY = new float[0];

  private Blocks() {}

  /** A contiguous {@code (batch, rows, heads, headDim)} view starting at {@code offset}. */
  static BlockView view(float[] data, int offset, int batch, int rows, int heads, int headDim) {
    int row = heads * headDim;
    return new BlockView(data, offset, batch, rows, heads, headDim, row, (long) rows * row);
  }

  /** The layout must have one shard per rank of the communicator. */
  static void checkLayout(ShardLayout layout, int ranks) {
    if (layout.parts() != ranks) {
      throw new IllegalArgumentException("layout has " + layout.parts() + " shards but the"
          + " communicator has " + ranks + " ranks");
    }
  }

  /**
   * Our q, k, v rows split by heads for an all-to-all: entry j holds heads
   * {@code [j·g, (j+1)·g)} of every row as one {@code [q | k | v]} message.
   */
  static float[][] splitHeads(BlockView q, BlockView k, BlockView v, int ways, int g) {
    return splitHeads(ways, g, q, k, v);
  }

  /**
   * Rows split by heads for an all-to-all: entry j holds heads {@code [j·g, (j+1)·g)} of every row
   * of each block, the blocks one after another (contiguous, each with its own head size).
   */
  static float[][] splitHeads(int ways, int g, BlockView... blocks) {
    int batch = blocks[0].batch();
    int rows = blocks[0].seq();
    float[][] send = new float[ways][];
    for (int j = 0; j < ways; j++) {
      int total = 0;
      for (BlockView x : blocks) {
        total = Math.addExact(total, floats(batch, rows, g, x.headDim()));
      }
      send[j] = new float[total];
      int off = 0;
      for (BlockView x : blocks) {
        copy(x, j * g, view(send[j], off, batch, rows, g, x.headDim()), 0, g);
        off += floats(batch, rows, g, x.headDim());
      }
    }
    return send;
  }

  /**
   * A log-sum-exp array {@code [batch][rows][heads]} as a block with head size 1, so that the
   * head-splitting and row-moving copies above move it like any other block.
   */
  static BlockView lseView(float[] lse, int offset, int batch, int rows, int heads) {
    return view(lse, offset, batch, rows, heads, 1);
  }

  /** Number of floats in a contiguous block of this shape. */
  static int floats(int batch, int rows, int heads, int headDim) {
    return Math.multiplyExact(Math.multiplyExact(batch, rows), Math.multiplyExact(heads, headDim));
  }

  /** Copies heads {@code [fromHead, fromHead+heads)} of every row of {@code src} into heads
   * {@code [toHead, toHead+heads)} of the same rows of {@code dst}. */
  static void copy(BlockView src, int fromHead, BlockView dst, int toHead, int heads) {
    if (src.batch() != dst.batch() || src.seq() != dst.seq()) {
      throw new IllegalArgumentException("copy between blocks of (batch " + src.batch() + ", rows "
          + src.seq() + ") and (batch " + dst.batch() + ", rows " + dst.seq() + ")");
    }
    int len = heads * src.headDim();
    for (int b = 0; b < src.batch(); b++) {
      for (int s = 0; s < src.seq(); s++) {
        System.arraycopy(src.data(), src.index(b, s, fromHead), dst.data(),
            dst.index(b, s, toHead), len);
      }
    }
  }

  /** Sets every element the view covers to 0. */
  static void zero(BlockView x) {
    int len = x.heads() * x.headDim();
    for (int b = 0; b < x.batch(); b++) {
      for (int s = 0; s < x.seq(); s++) {
        int i = x.index(b, s, 0);
        java.util.Arrays.fill(x.data(), i, i + len, 0f);
      }
    }
  }

  /** The blocks packed one after another into one contiguous array (one message). */
  static float[] pack(BlockView... blocks) {
    int total = 0;
    for (BlockView x : blocks) {
      total = Math.addExact(total, floats(x.batch(), x.seq(), x.heads(), x.headDim()));
    }
    float[] out = new float[total];
    int off = 0;
    for (BlockView x : blocks) {
      BlockView to = view(out, off, x.batch(), x.seq(), x.heads(), x.headDim());
      copy(x, 0, to, 0, x.heads());
      off += floats(x.batch(), x.seq(), x.heads(), x.headDim());
    }
    return out;
  }

  /**
   * K and v have the same heads, a count dividing q's (grouped-query attention when smaller), and
   * q's head size.
   */
  static void checkKvHeads(BlockView q, BlockView k, BlockView v) {
    if (k.heads() != v.heads() || q.heads() % k.heads() != 0 || k.headDim() != q.headDim()
        || v.headDim() != q.headDim()) {
      throw new IllegalArgumentException("k and v must have the same number of heads, dividing"
          + " q's " + q.heads() + ", and q's head size " + q.headDim() + "; got k (heads "
          + k.heads() + ", headDim " + k.headDim() + "), v (heads " + v.heads() + ", headDim "
          + v.headDim() + ")");
    }
  }

  /**
   * As {@link #checkShard}, but k and v may have fewer heads than q (grouped-query attention):
   * they need only agree with each other and divide q's head count.
   */
  static void checkGroupedShard(ShardLayout layout, int rank, BlockView q, BlockView k,
      BlockView v, BlockView out) {
    checkKvHeads(q, k, v);
    int rows = layout.size(rank);
    if (q.seq() != rows) {
      throw new IllegalArgumentException("rank " + rank + " got " + q.seq()
          + " rows but its shard holds " + rows);
    }
    for (BlockView x : new BlockView[] {k, v, out}) {
      if (x.seq() != rows || x.batch() != q.batch()) {
        throw new IllegalArgumentException("rank " + rank + ": q is (batch " + q.batch()
            + ", rows " + q.seq() + ") but k, v or out is (batch " + x.batch() + ", rows "
            + x.seq() + ")");
      }
    }
    if (out.heads() != q.heads() || out.headDim() != q.headDim()) {
      throw new IllegalArgumentException("rank " + rank + ": out must have q's " + q.heads()
          + " heads of " + q.headDim() + ", got " + out.heads() + " of " + out.headDim());
    }
  }

  /**
   * Checks that this rank's q, k, v and out cover its shard and agree in shape, before any
   * communication, so that a bad call fails on every rank alike instead of hanging its peers.
   * K/V with fewer heads than q (grouped-query attention) are refused with a message saying so:
   * the strategies that call this move K/V with q's head split.
   */
  static void checkShard(ShardLayout layout, int rank, BlockView q, BlockView k, BlockView v,
      BlockView out) {
    if (k.heads() < q.heads() && q.heads() % k.heads() == 0 && k.heads() == v.heads()) {
      throw new IllegalArgumentException("grouped-query attention (" + k.heads() + " K/V heads"
          + " for " + q.heads() + " query heads) runs with the local, ring, hierarchical and"
          + " ulysses backends, not this one");
    }
    int rows = layout.size(rank);
    if (q.seq() != rows) {
      throw new IllegalArgumentException("rank " + rank + " got " + q.seq()
          + " rows but its shard holds " + rows);
    }
    for (BlockView x : new BlockView[] {k, v, out}) {
      if (x.seq() != rows || x.batch() != q.batch() || x.heads() != q.heads()
          || x.headDim() != q.headDim()) {
        throw new IllegalArgumentException("rank " + rank + ": q is (batch " + q.batch()
            + ", rows " + q.seq() + ", heads " + q.heads() + ", headDim " + q.headDim()
            + ") but k, v or out is (batch " + x.batch() + ", rows " + x.seq() + ", heads "
            + x.heads() + ", headDim " + x.headDim() + ")");
      }
    }
  }
}
