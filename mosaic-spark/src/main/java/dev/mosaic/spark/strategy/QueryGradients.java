package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttentionBackward;
import java.util.List;

/**
 * The backward counterpart of {@link QueryAccumulator}: this rank's queries, their forward output
 * and log-sum-exp (over the whole sequence) and dO, against one travelling K/V block at a time.
 * Each {@link #attend} adds the block's share of dQ into this rank's dq, and this rank's share of
 * the block's dK/dV into a packed {@code [dK | dV]} buffer laid out like the {@code [K | V]}
 * buffer ({@link QueryAccumulator#pack}). Because the LSE and O are the global ones, the kernel's
 * recomputed P is the global softmax restricted to the block, so the shares simply add up. Block
 * pairs the mask hides entirely are skipped.
 */
final class QueryGradients {
  private final BlockView q;
  private final int kvHeads;
  private final BlockView out;
  private final BlockView dOut;
  private final BlockView dq;
  private final List<ShardLayout.Segment> querySegments;
  private final float[][] segmentLse; // the kernel takes [batch][rows][heads] from index 0
  private final CpuFlashAttentionBackward kernel;
  private final float scale;
  private final AttentionMask mask;

  /** Zeroes {@code dq}: it then only sums what {@link #attend} adds. */
  QueryGradients(BlockView q, int kvHeads, BlockView out, float[] lse, BlockView dOut,
      BlockView dq, List<ShardLayout.Segment> querySegments, CpuFlashAttentionBackward kernel,
      float scale, AttentionMask mask) {
    this.q = q;
    this.kvHeads = kvHeads;
    this.out = out;
    this.dOut = dOut;
    this.dq = dq;
    this.querySegments = querySegments;
    this.kernel = kernel;
    this.scale = scale;
    this.mask = mask;
    int heads = q.heads();
    segmentLse = new float[querySegments.size()][];
    int qLocal = 0;
    for (int i = 0; i < segmentLse.length; i++) {
      int rows = querySegments.get(i).length();
      segmentLse[i] = new float[q.batch() * rows * heads];
      for (int b = 0; b < q.batch(); b++) {
        System.arraycopy(lse, (b * q.seq() + qLocal) * heads, segmentLse[i], b * rows * heads,
            rows * heads);
      }
      qLocal += rows;
    }
    Blocks.zero(dq);
  }

  /**
   * Adds the gradients of our queries against a packed {@code [K | V]} block whose rows sit at
   * {@code kvSegments}: dQ into our dq, dK/dV into {@code dkv} (same layout as {@code kv}).
   */
  void attend(float[] kv, float[] dkv, List<ShardLayout.Segment> kvSegments) {
    int kvRows = kvSegments.stream().mapToInt(ShardLayout.Segment::length).sum();
    BlockView kAll = keys(kv, kvRows);
    BlockView vAll = values(kv, kvRows);
    BlockView dkAll = keys(dkv, kvRows);
    BlockView dvAll = values(dkv, kvRows);
    int qLocal = 0;
    for (int i = 0; i < querySegments.size(); i++) {
      ShardLayout.Segment qs = querySegments.get(i);
      int kLocal = 0;
      for (ShardLayout.Segment ks : kvSegments) {
        AttentionMask m = mask.at(qs.start(), ks.start());
        if (qs.length() > 0 && ks.length() > 0
            && m.visibleKeyEnd(0, qs.length(), ks.length()) > 0) {
          kernel.backward(q.rows(qLocal, qs.length()), kAll.rows(kLocal, ks.length()),
              vAll.rows(kLocal, ks.length()), out.rows(qLocal, qs.length()), segmentLse[i],
              dOut.rows(qLocal, qs.length()), scale, m, dq.rows(qLocal, qs.length()),
              dkAll.rows(kLocal, ks.length()), dvAll.rows(kLocal, ks.length()), true);
        }
        kLocal += ks.length();
      }
      qLocal += qs.length();
    }
  }

  /** Copies a packed {@code [dK | dV]} buffer of {@code dk.seq()} rows into dk and dv. */
  static void unpack(float[] dkv, BlockView dk, BlockView dv) {
    Blocks.copy(keys(dkv, dk.seq(), dk), 0, dk, 0, dk.heads());
    Blocks.copy(values(dkv, dk.seq(), dk), 0, dv, 0, dv.heads());
  }

  private BlockView keys(float[] packed, int rows) {
    return Blocks.view(packed, 0, q.batch(), rows, kvHeads, q.headDim());
  }

  private BlockView values(float[] packed, int rows) {
    return Blocks.view(packed, Blocks.floats(q.batch(), rows, kvHeads, q.headDim()), q.batch(),
        rows, kvHeads, q.headDim());
  }

  private static BlockView keys(float[] packed, int rows, BlockView like) {
    return Blocks.view(packed, 0, like.batch(), rows, like.heads(), like.headDim());
  }

  private static BlockView values(float[] packed, int rows, BlockView like) {
    return Blocks.view(packed, Blocks.floats(like.batch(), rows, like.heads(), like.headDim()),
        like.batch(), rows, like.heads(), like.headDim());
  }
}
