package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import java.util.Arrays;
import java.util.List;

/**
 * This rank's queries and their running attention result: attends them against one K/V block at
 * a time (a packed {@code [K | V]} buffer, see {@link #pack}) and LSE-merges each partial into the
 * accumulator. Block-pair segments that the mask hides entirely are skipped. Shared by the
 * strategies that move K/V blocks around (ring, hierarchical).
 */
final class QueryAccumulator {
  private final BlockView q;
  private final List<ShardLayout.Segment> querySegments;
  private final AttentionKernel kernel;
  private final float scale;
  private final AttentionMask mask;
  private final BlockView acc;
  private final float[] accLse;
  private final float[] part;
  private final float[] partLse;

  QueryAccumulator(BlockView q, List<ShardLayout.Segment> querySegments, AttentionKernel kernel,
      float scale, AttentionMask mask) {
    this.q = q;
    this.querySegments = querySegments;
    this.kernel = kernel;
    this.scale = scale;
    this.mask = mask;
    int rowFloats = q.heads() * q.headDim();
    float[] a = new float[q.batch() * q.seq() * rowFloats];
    acc = new BlockView(a, 0, q.batch(), q.seq(), q.heads(), q.headDim(), rowFloats,
        (long) q.seq() * rowFloats);
    accLse = new float[q.batch() * q.seq() * q.heads()];
    Arrays.fill(accLse, Float.NEGATIVE_INFINITY);
    part = new float[a.length];
    partLse = new float[accLse.length];
  }

  /** Floats a packed [K | V] buffer of {@code rows} rows needs. */
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
    BlockView kAll = new BlockView(kv, 0, batch, kvRows, heads, d, rowFloats,
        (long) kvRows * rowFloats);
    BlockView vAll = new BlockView(kv, batch * kvRows * rowFloats, batch, kvRows, heads, d,
        rowFloats, (long) kvRows * rowFloats);
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
          merge(qLocal, partView);
        }
        kLocal += ks.length();
      }
      qLocal += qs.length();
    }
  }

  /** Merges a partial for rows [rowOff, rowOff + part.seq) into the accumulator. */
  private void merge(int rowOff, BlockView p) {
    int heads = p.heads();
    for (int b = 0; b < p.batch(); b++) {
      for (int s = 0; s < p.seq(); s++) {
        for (int h = 0; h < heads; h++) {
          int pl = (b * p.seq() + s) * heads + h;
          int al = (b * acc.seq() + rowOff + s) * heads + h;
          LseMerge.mergeRow(acc.data(), acc.index(b, rowOff + s, h), accLse, al, p.data(),
              p.index(b, s, h), partLse[pl], p.headDim());
        }
      }
    }
  }

  /** Writes the merged result into {@code out} (shaped like q). */
  void finish(BlockView out) {
    int rowFloats = acc.heads() * acc.headDim();
    for (int b = 0; b < acc.batch(); b++) {
      for (int s = 0; s < acc.seq(); s++) {
        System.arraycopy(acc.data(), acc.index(b, s, 0), out.data(), out.index(b, s, 0),
            rowFloats);
      }
    }
  }
}
