package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;

/**
 * A ring inside each node and a ring between nodes. Ranks form nodes of {@code intraSize}
 * consecutive ranks (rank = node·intraSize + local). Every rank's K/V block takes the slow
 * inter-node hop once per node step — to the rank with the same local index in the next node —
 * and that transfer runs during the whole inner ring, in which the node's ranks pass the blocks
 * they currently hold around the fast intra-node links. After {@code nodes × intraSize} steps
 * every rank has seen every K/V block; partials merge by LSE, so the result is exact.
 *
 * <p>Inter-node bytes per rank: (nodes−1) blocks, against (p−1) for a flat ring. With
 * {@code spark.mosaic.comm.wireDtype=bf16} on TCP every K/V hop carries bf16 (half those bytes);
 * a block forwarded again is not rounded again, since a bf16 value rounds to itself, so each
 * element still carries at most one rounding.
 */
public final class HierarchicalRingStrategy implements Strategy {
  private final Communicator comm;
  private final Communicator nodeComm;
  private final Communicator crossComm;
  private final ShardLayout layout;
  private final AttentionKernel kernel;
  private final int intraSize;
  private final int nodes;

  /** Collective over {@code comm}: splits it into node and cross-node groups. */
  public HierarchicalRingStrategy(Communicator comm, ShardLayout layout, int intraSize,
      AttentionKernel kernel) {
    int p = comm.size();
    if (intraSize < 1 || p % intraSize != 0) {
      throw new IllegalArgumentException("hierarchical attention needs nodes of equal size: "
          + p + " ranks cannot form nodes of " + intraSize + " (use a divisor of " + p + ")");
    }
    Blocks.checkLayout(layout, p);
    this.comm = comm;
    this.layout = layout;
    this.kernel = kernel;
    this.intraSize = intraSize;
    this.nodes = p / intraSize;
    int node = comm.rank() / intraSize;
    int local = comm.rank() % intraSize;
    this.nodeComm = comm.split(node, local);
    this.crossComm = comm.split(local, node);
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attend}: inside its node, at each of
   * the node steps, the intraSize−1 blocks it passes on; between nodes, nodes−1 blocks. Returned
   * as {intra-node, inter-node}.
   */
  public static long[] bytesSent(ShardLayout layout, int intraSize, int rank, int batch,
      int heads, int headDim) {
    int nodes = layout.parts() / intraSize;
    int node = rank / intraSize;
    int local = rank % intraSize;
    long intraRows = 0;
    long interRows = 0;
    for (int s = 0; s < nodes; s++) {
      int srcNode = Math.floorMod(node - s, nodes);
      if (s < nodes - 1) {
        interRows += layout.size(srcNode * intraSize + local);
      }
      for (int t = 0; t < intraSize - 1; t++) {
        intraRows += layout.size(srcNode * intraSize + Math.floorMod(local - t, intraSize));
      }
    }
    long perRow = 4L * 2 * batch * heads * headDim;
    return new long[] {intraRows * perRow, interRows * perRow};
  }

  @Override
  public String name() {
    return "hierarchical(ring " + nodes + " nodes x ring " + intraSize + ")";
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    int rank = comm.rank();
    if (q.seq() != layout.size(rank)) {
      throw new IllegalArgumentException("rank " + rank + " got " + q.seq()
          + " rows but its shard holds " + layout.size(rank));
    }
    int node = rank / intraSize;
    int local = rank % intraSize;
    int maxRows = layout.maxSize();
    int len = QueryAccumulator.packedLength(k, maxRows);
    float[] outerCur = new float[len];
    float[] outerNext = nodes > 1 ? new float[len] : null;
    float[] innerA = intraSize > 1 ? new float[len] : null;
    float[] innerB = intraSize > 1 ? new float[len] : null;
    QueryAccumulator.pack(k, v, outerCur);
    QueryAccumulator acc =
        new QueryAccumulator(q, k.heads(), layout.segments(rank), kernel, scale, mask);

    for (int s = 0; s < nodes; s++) {
      int srcNode = Math.floorMod(node - s, nodes); // outerCur holds (srcNode, local)'s block
      Communicator.Transfer outer = null;
      if (s < nodes - 1) {
        int nextNode = Math.floorMod(srcNode - 1, nodes);
        outer = crossComm.sendRecvActivations(outerCur, 0, lengthOf(k, srcNode, local),
            (node + 1) % nodes, outerNext, 0, lengthOf(k, nextNode, local),
            Math.floorMod(node - 1, nodes));
      }
      // The inner ring starts from outerCur, which the outer transfer only reads.
      float[] cur = outerCur;
      float[] spare = innerA;
      for (int t = 0; t < intraSize; t++) {
        int srcLocal = Math.floorMod(local - t, intraSize);
        Communicator.Transfer inner = null;
        if (t < intraSize - 1) {
          int nextLocal = Math.floorMod(srcLocal - 1, intraSize);
          inner = nodeComm.sendRecvActivations(cur, 0, lengthOf(k, srcNode, srcLocal),
              (local + 1) % intraSize, spare, 0, lengthOf(k, srcNode, nextLocal),
              Math.floorMod(local - 1, intraSize));
        }
        acc.attend(cur, layout.segments(srcNode * intraSize + srcLocal));
        if (inner != null) {
          inner.await();
          float[] received = spare;
          spare = cur == outerCur ? innerB : cur;
          cur = received;
        }
      }
      if (outer != null) {
        outer.await();
        float[] t = outerCur;
        outerCur = outerNext;
        outerNext = t;
      }
    }
    acc.finish(out, null);
  }

  private int lengthOf(BlockView k, int node, int local) {
    return QueryAccumulator.packedLength(k, layout.size(node * intraSize + local));
  }
}
