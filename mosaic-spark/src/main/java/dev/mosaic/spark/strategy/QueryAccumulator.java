package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import java.util.List;

/**
 * This rank's queries and their running attention result: attends them against one K/V block at
 * a time (a packed {@code [K | V]} buffer, see {@link #pack}) and LSE-merges each partial into the
 * accumulator (a {@link PartialOutput}, the same (o, lse) partial mesh2d reduces). Block-pair
 * segments that the mask hides entirely are skipped. Shared by the strategies that move K/V blocks
 * around (ring, hierarchical).
 */
final class QueryAccumulator {
  private final BlockView q;
  private final int kvHeads;
  private final List<ShardLayout.Segment> querySegments;
  private final AttentionKernel kernel;
  private final float scale;
  private final AttentionMask mask;
  private final PartialOutput acc;
  private final float[] part;
  private final float[] partLse;

  /** {@code kvHeads}: heads of the travelling K/V blocks ({@code q.heads()} unless GQA). */
  QueryAccumulator(BlockView q, int kvHeads, List<ShardLayout.Segment> querySegments,
      AttentionKernel kernel, float scale, AttentionMask mask) {
    this.q = q;
    this.kvHeads = kvHeads;
    this.querySegments = querySegments;
    this.kernel = kernel;
    this.scale = scale;
    this.mask = mask;
    acc = new PartialOutput(q.batch(), q.seq(), q.heads(), q.headDim());
    part = new float[q.batch() * q.seq() * q.heads() * q.headDim()];
    partLse = new float[q.batch() * q.seq() * q.heads()];
  }

  /**
   * Floats a packed [K | V] buffer of {@code rows} rows needs, {@code like} a K block (its head
   * count is the K/V heads: fewer than the query's under grouped-query attention).
   */
  static int packedLength(BlockView like, int rows) {
    return 2 * like.batch() * rows * like.heads() * like.headDim();
  }

  /** Copies k then v, each as a contiguous (batch, rows, heads, headDim) block, into dst. */
  static void pack(BlockView k, BlockView v, float[] dst) {
    int rowFloats = k.heads() * k.headDim();
    int vOff = k.batch() * k.seq() * rowFloats;
    for (int b = 0; b < k.batch(); b++) {
      for (int s = 0; s < k.seq(); s++) {
        int to = (b * k.seq() + s) * rowFloats;
        System.arraycopy(k.data(), k.index(b, s, 0), dst, to, rowFloats);
        System.arraycopy(v.data(), v.index(b, s, 0), dst, vOff + to, rowFloats);
      }
    }
  }

  /** Attention of our queries against a packed block whose rows sit at {@code kvSegments}. */
  void attend(float[] kv, List<ShardLayout.Segment> kvSegments) {
    int batch = q.batch();
    int heads = q.heads();
    int d = q.headDim();
    int rowFloats = heads * d;
    int kvRows = kvSegments.stream().mapToInt(ShardLayout.Segment::length).sum();
    BlockView kAll = Blocks.view(kv, 0, batch, kvRows, kvHeads, d);
    BlockView vAll = Blocks.view(kv, Blocks.floats(batch, kvRows, kvHeads, d), batch, kvRows,
        kvHeads, d);
    int qLocal = 0;
    for (ShardLayout.Segment qs : querySegments) {
      int kLocal = 0;
      for (ShardLayout.Segment ks : kvSegments) {
        AttentionMask m = mask.at(qs.start(), ks.start());
        if (qs.length() > 0 && ks.length() > 0
            && m.visibleKeyEnd(0, qs.length(), ks.length()) > 0) {
          BlockView partView = new BlockView(part, 0, batch, qs.length(), heads, d, rowFloats,
              (long) qs.length() * rowFloats);
          kernel.forward(q.rows(qLocal, qs.length()), kAll.rows(kLocal, ks.length()),
              vAll.rows(kLocal, ks.length()), scale, m, partView, partLse);
          acc.merge(qLocal, partView, partLse);
        }
        kLocal += ks.length();
      }
      qLocal += qs.length();
    }
  }

  /**
   * Writes the merged result into {@code out} (shaped like q) and, unless null, its log-sum-exp
   * {@code [batch][rows][heads]} into {@code lse}.
   */
  void finish(BlockView out, float[] lse) {
    if (lse != null) {
      acc.copyLse(lse);
    }
    BlockView o = acc.output();
    int rowFloats = o.heads() * o.headDim();
    for (int b = 0; b < o.batch(); b++) {
      for (int s = 0; s < o.seq(); s++) {
        System.arraycopy(o.data(), o.index(b, s, 0), out.data(), out.index(b, s, 0), rowFloats);
      }
    }
  }
}
