package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;

/** No sharding: the whole sequence is on this rank; one kernel call. */
public final class LocalStrategy implements Strategy {
  private final AttentionKernel kernel;
  private final boolean ownsKernel;

  /** @param ownsKernel close the kernel with this strategy */
  public LocalStrategy(AttentionKernel kernel, boolean ownsKernel) {
    this.kernel = kernel;
    this.ownsKernel = ownsKernel;
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    float[] lse = new float[q.batch() * q.seq() * q.heads()];
    kernel.forward(q, k, v, scale, mask, out, lse);
  }

  @Override
  public String name() {
    return "local";
  }

  @Override
  public void close() {
    if (ownsKernel) {
      kernel.close();
    }
  }
}
