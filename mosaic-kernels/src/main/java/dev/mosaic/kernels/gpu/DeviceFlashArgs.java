package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import java.util.List;

/**
 * The flash kernel's arguments for blocks already on the device (strided, as
 * {@link DeviceBlock}s), in the order of {@code flash_forward.cu}. {@link FlashLaunch#arguments}
 * is the contiguous special case used after a host upload.
 */
final class DeviceFlashArgs {
  private DeviceFlashArgs() {}

  /** @param qScale {@code scale·log2 e} */
  static List<KernelArg> of(FlashLaunch launch, DeviceBlock q, DeviceBlock k, DeviceBlock v,
      DeviceBlock out, long lse, float qScale, AttentionMask mask) {
    return List.of(
        KernelArg.ptr(q.address()), KernelArg.i64(q.batchStride()), KernelArg.i32(q.rowStride()),
        KernelArg.ptr(k.address()), KernelArg.i64(k.batchStride()), KernelArg.i32(k.rowStride()),
        KernelArg.ptr(v.address()), KernelArg.i64(v.batchStride()), KernelArg.i32(v.rowStride()),
        KernelArg.ptr(out.address()), KernelArg.i64(out.batchStride()),
        KernelArg.i32(out.rowStride()), KernelArg.ptr(lse),
        KernelArg.i32(launch.seqQ()), KernelArg.i32(launch.seqK()), KernelArg.i32(launch.heads()),
        KernelArg.i32(launch.kvHeads()), KernelArg.i32(launch.headDim()), KernelArg.f32(qScale),
        KernelArg.i32(mask.causal() ? 1 : 0), KernelArg.i64(mask.queryOffset()),
        KernelArg.i64(mask.keyOffset()), KernelArg.i64(mask.keyLimit()));
  }
}
