package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.spark.comm.Communicator;
import java.util.Arrays;
import java.util.List;

/**
 * Ring attention: rank r keeps its queries; the K/V blocks travel around the ring r → r+1. At
 * each of the p steps the rank starts sending the block it holds to its successor and receiving
 * the next one from its predecessor, computes attention of its queries against the block it holds
 * while the transfer runs (double buffer), then LSE-merges the partial into its output. Block
 * pairs that the mask hides entirely are skipped. Uneven shards and zigzag layouts work: the
 * layout says where each rank's rows sit.
 */
public final class RingStrategy implements Strategy {
  private final Communicator comm;
  private final ShardLayout layout;
  private final AttentionKernel kernel;

  public RingStrategy(Communicator comm, ShardLayout layout, AttentionKernel kernel) {
    if (layout.parts() != comm.size()) {
      throw new IllegalArgumentException("layout has " + layout.parts() + " shards but the"
          + " communicator has " + comm.size() + " ranks");
    }
    this.comm = comm;
    this.layout = layout;
    this.kernel = kernel;
  }

  @Override
  public String name() {
    return "ring(p=" + comm.size() + ")";
  }

  /**
   * Bytes of the arrays one rank holds during {@link #attend} for an input of {@code batch}
   * sequences: its q/k/v/out shards, two K/V transfer buffers sized for the largest shard, the
   * output accumulator and one partial with their log-sum-exps. The kernel's per-thread tiles
   * (a few hundred KiB) come on top.
   */
  public static long workingSetBytes(ShardLayout layout, int rank, int batch, int heads,
      int headDim) {
    long row = (long) heads * headDim;
    long mine = (long) batch * layout.size(rank);
    long largest = 0;
    for (int r = 0; r < layout.parts(); r++) {
      largest = Math.max(largest, (long) batch * layout.size(r));
    }
    long floats = 4 * mine * row // q, k, v, out
        + 2 * 2 * largest * row // current and next [K | V]
        + 2 * mine * row // accumulator and partial
        + 2 * mine * heads; // their log-sum-exps
    return 4 * floats;
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    int p = comm.size();
    int rank = comm.rank();
    if (q.seq() != layout.size(rank)) {
      throw new IllegalArgumentException("rank " + rank + " got " + q.seq()
          + " rows but its shard holds " + layout.size(rank));
    }
    int batch = q.batch();
    int heads = q.heads();
    int d = q.headDim();
    int rowFloats = heads * d;
    int maxRows = 0;
    for (int r = 0; r < p; r++) {
      maxRows = Math.max(maxRows, layout.size(r));
    }
    // Two buffers of [K block | V block], each (batch, rows, heads, headDim), contiguous.
    float[] current = new float[2 * batch * maxRows * rowFloats];
    float[] next = p > 1 ? new float[current.length] : null;
    pack(k, v, current);

    int rows = q.seq();
    float[] acc = new float[batch * rows * rowFloats];
    float[] accLse = new float[batch * rows * heads];
    Arrays.fill(accLse, Float.NEGATIVE_INFINITY);
    BlockView accView = new BlockView(acc, 0, batch, rows, heads, d, rowFloats,
        (long) rows * rowFloats);
    float[] part = new float[acc.length];
    float[] partLse = new float[accLse.length];

    int succ = (rank + 1) % p;
    int pred = (rank + p - 1) % p;
    for (int step = 0; step < p; step++) {
      int src = (rank - step + p) % p; // whose K/V we hold now
      Communicator.Transfer transfer = null;
      if (step < p - 1) {
        int sendLen = 2 * batch * layout.size(src) * rowFloats;
        int nextSrc = (src - 1 + p) % p;
        int recvLen = 2 * batch * layout.size(nextSrc) * rowFloats;
        transfer = comm.sendRecv(current, 0, sendLen, succ, next, 0, recvLen, pred);
      }
      attendBlock(q, current, src, scale, mask, accView, accLse, part, partLse);
      if (transfer != null) {
        transfer.await();
        float[] t = current;
        current = next;
        next = t;
      }
    }
    copy(accView, out);
  }

  /** Attention of our queries against the K/V block of rank {@code src}, merged into acc. */
  private void attendBlock(BlockView q, float[] kv, int src, float scale, AttentionMask mask,
      BlockView acc, float[] accLse, float[] part, float[] partLse) {
    int batch = q.batch();
    int heads = q.heads();
    int d = q.headDim();
    int rowFloats = heads * d;
    int kvRows = layout.size(src);
    BlockView kAll = new BlockView(kv, 0, batch, kvRows, heads, d, rowFloats,
        (long) kvRows * rowFloats);
    BlockView vAll = new BlockView(kv, batch * kvRows * rowFloats, batch, kvRows, heads, d,
        rowFloats, (long) kvRows * rowFloats);
    List<ShardLayout.Segment> qSegs = layout.segments(comm.rank());
    List<ShardLayout.Segment> kSegs = layout.segments(src);
    int qLocal = 0;
    for (ShardLayout.Segment qs : qSegs) {
      int kLocal = 0;
      for (ShardLayout.Segment ks : kSegs) {
        AttentionMask m = mask.at(qs.start(), ks.start());
        if (qs.length() > 0 && ks.length() > 0 && m.visibleKeyEnd(0, qs.length(), ks.length()) > 0) {
          BlockView qPart = q.rows(qLocal, qs.length());
          BlockView accPart = acc.rows(qLocal, qs.length());
          BlockView partView = new BlockView(part, 0, batch, qs.length(), heads, d, rowFloats,
              (long) qs.length() * rowFloats);
          kernel.forward(qPart, kAll.rows(kLocal, ks.length()), vAll.rows(kLocal, ks.length()),
              scale, m, partView, partLse);
          mergeRows(accPart, accLse, qLocal, acc.seq(), partView, partLse);
        }
        kLocal += ks.length();
      }
      qLocal += qs.length();
    }
  }

  /** Merges a partial for rows [rowOff, rowOff+part.seq) into the accumulator. */
  private static void mergeRows(BlockView accPart, float[] accLse, int rowOff, int accRows,
      BlockView part, float[] partLse) {
    int heads = part.heads();
    for (int b = 0; b < part.batch(); b++) {
      for (int s = 0; s < part.seq(); s++) {
        for (int h = 0; h < heads; h++) {
          int pl = (b * part.seq() + s) * heads + h;
          int al = (b * accRows + rowOff + s) * heads + h;
          LseMerge.mergeRow(accPart.data(), accPart.index(b, s, h), accLse, al, part.data(),
              part.index(b, s, h), partLse[pl], part.headDim());
        }
      }
    }
  }

  private static void pack(BlockView k, BlockView v, float[] dst) {
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

  private static void copy(BlockView from, BlockView to) {
    int rowFloats = from.heads() * from.headDim();
    for (int b = 0; b < from.batch(); b++) {
      for (int s = 0; s < from.seq(); s++) {
        System.arraycopy(from.data(), from.index(b, s, 0), to.data(), to.index(b, s, 0),
            rowFloats);
      }
    }
  }
}
