package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;
import java.util.List;

/**
 * {@link RingBlocks} in host arrays: two packed {@code [K | V]} buffers that any communicator
 * moves, and a {@link QueryAccumulator} that runs the kernel and LSE-merges on the host.
 */
final class HostRingBlocks implements RingBlocks {
  private final Communicator comm;
  private final QueryAccumulator acc;
  private final BlockView k; // the shape of every travelling K block (GQA: fewer heads than q)
  private float[] current;
  private float[] next;

  record Factory(Communicator comm, AttentionKernel kernel) implements RingBlocks.Factory {
    @Override
    public RingBlocks open(BlockView q, BlockView k, BlockView v,
        List<ShardLayout.Segment> querySegments, int maxRows, float scale, AttentionMask mask) {
      return new HostRingBlocks(comm, kernel, q, k, v, querySegments, maxRows, scale, mask);
    }
  }

  private HostRingBlocks(Communicator comm, AttentionKernel kernel, BlockView q, BlockView k,
      BlockView v, List<ShardLayout.Segment> querySegments, int maxRows, float scale,
      AttentionMask mask) {
    this.comm = comm;
    this.k = k;
    current = new float[QueryAccumulator.packedLength(k, maxRows)];
    next = comm.size() > 1 ? new float[current.length] : null;
    QueryAccumulator.pack(k, v, current);
    acc = new QueryAccumulator(q, k.heads(), querySegments, kernel, scale, mask);
  }

  @Override
  public Communicator.Transfer pass(int sendRows, int dst, int recvRows, int src) {
    // K/V are read-only activations: they may travel in the communicator's wire type (bf16).
    return comm.sendRecvActivations(current, 0, QueryAccumulator.packedLength(k, sendRows), dst,
        next, 0, QueryAccumulator.packedLength(k, recvRows), src);
  }

  @Override
  public void attend(List<ShardLayout.Segment> kvSegments) {
    acc.attend(current, kvSegments);
  }

  @Override
  public void arrived(Communicator.Transfer pass) {
    pass.await();
    float[] t = current;
    current = next;
    next = t;
  }

  @Override
  public void finish(BlockView out, float[] lse) {
    acc.finish(out, lse);
  }

  @Override
  public void close() {}
}
