package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;

/** The device side of {@link CudaFlashAttention}; implemented with the CUDA driver API. */
interface FlashBackend extends AutoCloseable {

  /** Runs the flash forward kernel; {@code qScale} is {@code scale·log2 e}. */
  void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v, float qScale,
      AttentionMask mask, BlockView out, float[] lse);

  /**
   * Whether {@link #forwardVarlen} runs {@code dtype} inputs at this head dim in one launch: fp32
   * on the fp32 kernel, fp16/bf16 where the tensor-core kernel runs (else the caller runs one
   * forward per sequence).
   */
  default boolean hasVarlen(GpuDtype dtype, int headDim) {
    return dtype == GpuDtype.FP32;
  }

  /** Runs the varlen flash forward kernel over packed sequences (see {@link #hasVarlen}). */
  default void forwardVarlen(FlashLaunch launch, BlockView q, BlockView k, BlockView v,
      dev.mosaic.kernels.VarlenSequences seqs, float qScale, AttentionMask mask, BlockView out,
      float[] lse) {
    throw new UnsupportedOperationException(describe() + " has no varlen kernel");
  }

  /** Runs the LSE merge kernel: folds {@code (part, partLse)} into {@code (acc, accLse)}. */
  void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse);

  /** GPU time of the last forward kernel in milliseconds (CUDA events), NaN if unknown. */
  default double lastKernelMillis() {
    return Double.NaN;
  }

  /** Name of the last forward kernel launched ("" before the first). */
  default String lastKernel() {
    return "";
  }

  /** The stream the device entry points enqueue on; backends without them throw. */
  default long stream() {
    throw new UnsupportedOperationException("this backend has no device entry points");
  }

  /** The visible device ordinal. */
  default int device() {
    throw new UnsupportedOperationException("this backend has no device entry points");
  }

  /** {@link #forward} on device buffers, enqueued on {@link #stream()}, not awaited. */
  default void forwardDevice(FlashLaunch launch, DeviceBlock q, DeviceBlock k, DeviceBlock v,
      float qScale, AttentionMask mask, DeviceBlock out, long lse) {
    throw new UnsupportedOperationException("this backend has no device entry points");
  }

  /** {@link #merge} on device buffers, enqueued on {@link #stream()}, not awaited. */
  default void mergeDevice(long acc, long accLse, long part, long partLse, long rows,
      int headDim) {
    throw new UnsupportedOperationException("this backend has no device entry points");
  }

  /**
   * convert.cu on device buffers: {@code n} fp32 values at {@code src} rounded to {@code to}
   * (fp16 or bf16) at {@code dst}, enqueued on {@link #stream()}, not awaited.
   */
  default void convertDevice(long src, long dst, long n, GpuDtype to) {
    throw new UnsupportedOperationException("this backend has no device entry points");
  }

  /** Whether the device entry points exist. */
  default boolean hasDeviceEntryPoints() {
    return false;
  }

  /** Device name and where the kernels came from (fatbin / NVRTC). */
  String describe();

  @Override
  void close();
}
