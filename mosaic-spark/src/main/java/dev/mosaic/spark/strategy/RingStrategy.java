package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;

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
    Blocks.checkLayout(layout, comm.size());
    this.comm = comm;
    this.layout = layout;
    this.kernel = kernel;
  }

  @Override
  public String name() {
    return "ring(p=" + comm.size() + ")";
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attend}, as
   * {@link Communicator#bytesSent()} counts them: the p−1 K/V blocks it passes on, block of step s
   * being rank (rank − s)'s shard: {@code 4·2·b·h·d·Σ_{s<p−1} n_{rank−s}}; with even shards
   * {@code 8·b·h·d·n·(p−1)/p}.
   */
  public static long bytesSent(ShardLayout layout, int rank, int batch, int heads, int headDim) {
    int p = layout.parts();
    long rows = 0;
    for (int s = 0; s < p - 1; s++) {
      rows += layout.size(Math.floorMod(rank - s, p));
    }
    return 4L * 2 * batch * rows * heads * headDim;
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
    long largest = (long) batch * layout.maxSize();
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
    int maxRows = layout.maxSize();
    // Two buffers of [K block | V block]: one computed on, one being received (double buffer).
    float[] current = new float[QueryAccumulator.packedLength(q, maxRows)];
    float[] next = p > 1 ? new float[current.length] : null;
    QueryAccumulator.pack(k, v, current);
    QueryAccumulator acc = new QueryAccumulator(q, layout.segments(rank), kernel, scale, mask);

    int succ = (rank + 1) % p;
    int pred = (rank + p - 1) % p;
    for (int step = 0; step < p; step++) {
      int src = (rank - step + p) % p; // whose K/V we hold now
      Communicator.Transfer transfer = null;
      if (step < p - 1) {
        int nextSrc = (src - 1 + p) % p;
        transfer = comm.sendRecv(current, 0, QueryAccumulator.packedLength(q, layout.size(src)),
            succ, next, 0, QueryAccumulator.packedLength(q, layout.size(nextSrc)), pred);
      }
      acc.attend(current, layout.segments(src));
      if (transfer != null) {
        transfer.await();
        float[] t = current;
        current = next;
        next = t;
      }
    }
    acc.finish(out);
  }
}
