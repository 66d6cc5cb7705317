package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.CpuFlashAttentionBackward;

/** No sharding: the whole sequence is on this rank; one kernel call. */
public final class LocalStrategy implements Strategy {
  private final AttentionKernel kernel;
  private final boolean ownsKernel;
  private CpuFlashAttentionBackward backward; // made on first use: most strategies never train

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
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    kernel.forward(q, k, v, scale, mask, out, lse);
  }

  /** The CPU backward kernel, whatever kernel ran the forward (there is no GPU backward yet). */
  @Override
  public void attendBackward(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse,
      BlockView dOut, float scale, AttentionMask mask, BlockView dq, BlockView dk, BlockView dv) {
    if (backward == null) {
      backward = new CpuFlashAttentionBackward(kernel instanceof CpuFlashAttention cpu
          ? cpu.threads() : Runtime.getRuntime().availableProcessors());
    }
    backward.backward(q, k, v, out, lse, dOut, scale, mask, dq, dk, dv, false);
  }

  @Override
  public String name() {
    return "local";
  }

  @Override
  public void close() {
    if (backward != null) {
      backward.close();
    }
    if (ownsKernel) {
      kernel.close();
    }
  }
}
