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
  private final RingBlocks.Factory blocks;

  /** K/V blocks on the GPU when comm is NCCL and kernel the CUDA one, else in host arrays. */
  public RingStrategy(Communicator comm, ShardLayout layout, AttentionKernel kernel) {
    this(comm, layout, kernel, RingBlocks.choose(comm, kernel));
  }

  /** With the blocks kept by {@code blocks} (host arrays or device memory). */
  public RingStrategy(Communicator comm, ShardLayout layout, AttentionKernel kernel,
      RingBlocks.Factory blocks) {
    Blocks.checkLayout(layout, comm.size());
    this.comm = comm;
    this.layout = layout;
    this.kernel = kernel;
    this.blocks = blocks;
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
    int succ = (rank + 1) % p;
    int pred = (rank + p - 1) % p;
    // Two K/V buffers: one computed on, one being received (double buffer).
    try (RingBlocks held = blocks.open(q, k, v, layout.segments(rank), layout.maxSize(), scale,
        mask)) {
      for (int step = 0; step < p; step++) {
        int src = (rank - step + p) % p; // whose K/V we hold now
        Communicator.Transfer transfer = null;
        if (step < p - 1) {
          int nextSrc = (src - 1 + p) % p;
          transfer = held.pass(layout.size(src), succ, layout.size(nextSrc), pred);
        }
        held.attend(layout.segments(src));
        if (transfer != null) {
          held.arrived(transfer);
        }
      }
      held.finish(out, null);
    }
  }
}
