package dev.mosaic.kernels.gpu;

/**
 * Which forward kernel a call runs on the GPU: the tensor-core kernel ({@code flash_forward_tc.cu})
 * for fp16/bf16 inputs on sm_80+ when its shared memory fits the device, otherwise the fp32-FMA
 * kernel ({@code flash_forward.cu}), which stays the fallback and the reference.
 * {@code -Dmosaic.gpu.tensorCores=false} forces the fallback (to compare the two).
 */
public final class KernelSelection {
  public static final String PROPERTY = "mosaic.gpu.tensorCores";

  /** The choice, and why in a few words (shown by {@code describe()} and the bench). */
  public record Choice(boolean tensorCores, String reason) {}

  private KernelSelection() {}

  /** Whether {@value #PROPERTY} allows tensor cores (default yes). */
  public static boolean enabledByProperty() {
    return !"false".equalsIgnoreCase(System.getProperty(PROPERTY, "true"));
  }

  public static Choice choose(GpuDtype dtype, int headDim, int computeCapability,
      int maxSharedPerBlock, boolean enabled) {
    if (dtype == GpuDtype.FP32) {
      return new Choice(false, "fp32 inputs: fp32 FMA kernel");
    }
    if (!enabled) {
      return new Choice(false, "tensor cores off (-D" + PROPERTY + "=false): fp32 FMA kernel");
    }
    if (computeCapability < TensorCoreLaunch.MIN_COMPUTE_CAPABILITY) {
      return new Choice(false, "sm_" + computeCapability + " is below sm_"
          + TensorCoreLaunch.MIN_COMPUTE_CAPABILITY + ": fp32 FMA kernel");
    }
    int bucket = FlashLaunch.of(dtype, 1, 1, 1, 1, headDim).headDimBucket();
    int smem = TensorCoreLaunch.sharedBytes(bucket);
    if (smem > maxSharedPerBlock) {
      return new Choice(false, "the tensor-core kernel needs " + smem + " bytes of shared memory"
          + " at head dim " + headDim + ", the device allows " + maxSharedPerBlock
          + ": fp32 FMA kernel");
    }
    return new Choice(true, "tensor cores (WMMA " + dtype.suffix() + ", fp32 accumulation)");
  }
}
