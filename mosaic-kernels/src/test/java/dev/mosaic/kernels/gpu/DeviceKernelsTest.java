package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CancelledException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The kernels' device entry points without a GPU: launch arguments for strided device blocks,
 * and what {@link CudaFlashAttention#deviceKernels()} passes to its backend.
 */
class DeviceKernelsTest {

  @Test
  void contiguousDeviceBlocksGiveTheHostUploadsArguments() {
    FlashLaunch l = FlashLaunch.of(GpuDtype.BF16, 2, 10, 20, 3, 16);
    AttentionMask mask = new AttentionMask(true, 7, 9, 11);
    List<KernelArg> device = DeviceFlashArgs.of(l,
        DeviceBlock.contiguous(100, 2, 10, 3, 16, 2), DeviceBlock.contiguous(200, 2, 20, 3, 16, 2),
        DeviceBlock.contiguous(300, 2, 20, 3, 16, 2), DeviceBlock.contiguous(400, 2, 10, 3, 16, 4),
        500, 0.5f, mask);
    assertEquals(l.arguments(100, 200, 300, 400, 500, 0.5f, mask), device);
  }

  @Test
  void rowsOfADeviceBlockKeepItsStrides() {
    DeviceBlock kv = DeviceBlock.contiguous(1000, 2, 30, 4, 8, 2); // bf16, row = 32 elements
    DeviceBlock r = kv.rows(5, 10);
    assertEquals(1000 + 5 * 32 * 2, r.address());
    assertEquals(30 * 32, r.batchStride()); // still the whole block's batch stride
    assertEquals(32, r.rowStride());
    assertEquals(10, r.seq());
    assertThrows(IndexOutOfBoundsException.class, () -> kv.rows(25, 10));
  }

  /** Records device launches. */
  private static final class DeviceBackend implements FlashBackend {
    final List<String> calls = new ArrayList<>();

    @Override
    public void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v, float qScale,
        AttentionMask mask, BlockView out, float[] lse) {
      throw new AssertionError("host path");
    }

    @Override
    public void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {
      throw new AssertionError("host path");
    }

    @Override
    public boolean hasDeviceEntryPoints() {
      return true;
    }

    @Override
    public long stream() {
      return 77;
    }

    @Override
    public int device() {
      return 3;
    }

    @Override
    public void forwardDevice(FlashLaunch launch, DeviceBlock q, DeviceBlock k, DeviceBlock v,
        float qScale, AttentionMask mask, DeviceBlock out, long lse) {
      calls.add(launch.kernelName() + " " + qScale);
    }

    @Override
    public void mergeDevice(long acc, long accLse, long part, long partLse, long rows,
        int headDim) {
      calls.add("merge " + rows + "x" + headDim);
    }

    @Override
    public void convertDevice(long src, long dst, long n, GpuDtype to) {
      calls.add(ConvertLaunch.kernelName(to) + " " + src + "->" + dst + " x" + n);
    }

    @Override
    public String describe() {
      return "device";
    }

    @Override
    public void close() {}
  }

  @Test
  void deviceEntryPointsScaleCancelAndSkipEmptyWork() {
    DeviceBackend backend = new DeviceBackend();
    try (CudaFlashAttention kernel = new CudaFlashAttention(backend, GpuDtype.FP16, null)) {
      DeviceKernels d = kernel.deviceKernels().orElseThrow();
      assertEquals(GpuDtype.FP16, d.dtype());
      assertEquals(77, d.stream());
      assertEquals(3, d.device());
      DeviceBlock q = DeviceBlock.contiguous(0, 1, 4, 2, 40, 2);
      DeviceBlock out = DeviceBlock.contiguous(0, 1, 4, 2, 40, 4);
      d.forward(q, q, q, 1f, AttentionMask.NONE, out, 0);
      d.forward(q.rows(0, 0), q, q, 1f, AttentionMask.NONE, out.rows(0, 0), 0); // no queries
      d.merge(0, 0, 0, 0, 8, 40);
      d.merge(0, 0, 0, 0, 0, 40); // no rows
      d.convertFromFloat(100, 200, 30);
      d.convertFromFloat(100, 200, 0); // nothing to convert
      float log2e = (float) (1.0 / Math.log(2));
      assertEquals(List.of("mosaic_flash_fwd_f16_d64 " + log2e, "merge 8x40",
          "mosaic_convert_f32_to_f16 100->200 x30"), backend.calls);
      kernel.cancelWith(() -> "task 9 was killed");
      assertThrows(CancelledException.class,
          () -> d.forward(q, q, q, 1f, AttentionMask.NONE, out, 0));
    }
  }

  @Test
  void aBackendWithoutDeviceEntryPointsOffersNone() {
    FlashBackend host = new FlashBackend() {
      @Override
      public void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v,
          float qScale, AttentionMask mask, BlockView out, float[] lse) {}

      @Override
      public void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {}

      @Override
      public String describe() {
        return "host only";
      }

      @Override
      public void close() {}
    };
    try (CudaFlashAttention kernel = new CudaFlashAttention(host, GpuDtype.FP32, null)) {
      assertTrue(kernel.deviceKernels().isEmpty());
    }
  }

  @Test
  void fp32StorageHasNothingToConvert() {
    DeviceBackend backend = new DeviceBackend();
    try (CudaFlashAttention kernel = new CudaFlashAttention(backend, GpuDtype.FP32, null)) {
      DeviceKernels d = kernel.deviceKernels().orElseThrow();
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> d.convertFromFloat(100, 200, 30));
      assertTrue(e.getMessage().contains("fp32 needs no conversion"), e.getMessage());
    }
  }
}
