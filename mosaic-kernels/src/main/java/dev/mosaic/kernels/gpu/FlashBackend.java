package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;

/** The device side of {@link CudaFlashAttention}; implemented with the CUDA driver API. */
interface FlashBackend extends AutoCloseable {

  /** Runs the flash forward kernel; {@code qScale} is {@code scale·log2 e}. */
  void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v, float qScale,
      AttentionMask mask, BlockView out, float[] lse);

  /** Runs the varlen flash forward kernel (fp32) over packed sequences. */
  default void forwardVarlen(FlashLaunch launch, BlockView q, BlockView k, BlockView v,
      dev.mosaic.kernels.VarlenSequences seqs, float qScale, AttentionMask mask, BlockView out,
      float[] lse) {
    throw new UnsupportedOperationException(describe() + " has no varlen kernel");
  }

  /** Runs the LSE merge kernel: folds {@code (part, partLse)} into {@code (acc, accLse)}. */
  void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse);

  /** Device name and where the kernels came from (fatbin / NVRTC). */
  String describe();

  @Override
  void close();
}
