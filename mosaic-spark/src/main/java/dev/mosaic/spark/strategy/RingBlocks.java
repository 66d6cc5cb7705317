package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.gpu.DeviceRingBlocks;
import java.util.List;

/**
 * Where one forward ring keeps its data: the K/V double buffer (the block computed on and the one
 * being received), this rank's queries, and the running output with its log-sum-exp. The ring
 * loop in {@link RingStrategy} is the same whatever holds them: host arrays moved by any
 * communicator ({@link HostRingBlocks}), or device memory moved by NCCL
 * ({@link DeviceRingBlocks}), where K/V stay on the GPU for the whole ring and only the final
 * output comes back.
 */
public interface RingBlocks extends AutoCloseable {

  /**
   * Starts passing the block held now ({@code sendRows} rows) to {@code dst} while receiving the
   * next one ({@code recvRows} rows) from {@code src} into the other buffer; returns at once.
   */
  Communicator.Transfer pass(int sendRows, int dst, int recvRows, int src);

  /** Attends this rank's queries to the block held now, whose rows sit at {@code kvSegments}. */
  void attend(List<ShardLayout.Segment> kvSegments);

  /** Waits for {@code pass} to complete; the received block becomes the one held. */
  void arrived(Communicator.Transfer pass);

  /** Writes the merged output into {@code out} and, unless null, the LSE into {@code lse}. */
  void finish(BlockView out, float[] lse);

  /** Releases the buffers (not the communicator). */
  @Override
  void close();

  /** Opens the blocks of one ring pass: copies in q and this rank's K/V. */
  interface Factory {
    RingBlocks open(BlockView q, BlockView k, BlockView v, List<ShardLayout.Segment> querySegments,
        int maxRows, float scale, AttentionMask mask);
  }

  /** Device-resident blocks when {@code comm} and {@code kernel} share a GPU, else host arrays. */
  static Factory choose(Communicator comm, AttentionKernel kernel) {
    return DeviceRingBlocks.factory(comm, kernel).orElseGet(() -> new HostRingBlocks.Factory(comm,
        kernel));
  }
}
