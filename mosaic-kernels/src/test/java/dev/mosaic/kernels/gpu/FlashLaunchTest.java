package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import java.util.List;
import org.junit.jupiter.api.Test;

class FlashLaunchTest {

  @Test
  void picksTheSmallestHeadDimBucket() {
    assertEquals("mosaic_flash_fwd_f32_d32", FlashLaunch.of(GpuDtype.FP32, 1, 5, 5, 1, 8)
        .kernelName());
    assertEquals("mosaic_flash_fwd_bf16_d64", FlashLaunch.of(GpuDtype.BF16, 1, 5, 5, 1, 33)
        .kernelName());
    assertEquals("mosaic_flash_fwd_f16_d128", FlashLaunch.of(GpuDtype.FP16, 1, 5, 5, 1, 128)
        .kernelName());
    assertEquals("mosaic_flash_fwd_f32_d256", FlashLaunch.of(GpuDtype.FP32, 1, 5, 5, 1, 129)
        .kernelName());
  }

  @Test
  void geometryFollowsTheTiles() {
    FlashLaunch l = FlashLaunch.of(GpuDtype.FP32, 3, 129, 1000, 8, 64);
    assertEquals(3, l.gridX()); // 129 queries → 3 tiles of 64
    assertEquals(49_920, l.sharedBytes()); // (2·64·65 + 64·65)·4: above 48 KiB, so opt-in
    assertEquals(148_224, FlashLaunch.sharedBytes(256)); // fits the A100's 163 KiB opt-in
    assertTrue(FlashLaunch.of(GpuDtype.FP32, 1, 0, 4, 1, 8).empty());
    assertEquals(2, FlashLaunch.mergeBlocks(9));
  }

  @Test
  void argumentsFollowTheKernelSignature() {
    FlashLaunch l = FlashLaunch.of(GpuDtype.FP16, 2, 10, 20, 3, 16);
    List<KernelArg> a = l.arguments(100, 200, 300, 400, 500, 0.5f,
        new AttentionMask(true, 7, 9, 11));
    assertEquals(23, a.size());
    assertEquals(KernelArg.ptr(100), a.get(0));
    assertEquals(KernelArg.i64(10 * 48), a.get(1)); // q batch stride
    assertEquals(KernelArg.i32(48), a.get(2)); // row stride heads·headDim
    assertEquals(KernelArg.i64(20 * 48), a.get(4)); // k batch stride
    assertEquals(KernelArg.ptr(500), a.get(12)); // lse
    assertEquals(List.of(KernelArg.i32(10), KernelArg.i32(20), KernelArg.i32(3), KernelArg.i32(3),
        KernelArg.i32(16)), a.subList(13, 18)); // seqQ, seqK, heads, kvHeads (MHA), headDim
    assertEquals(0.5f, a.get(18).asFloat());
    assertEquals(List.of(KernelArg.i32(1), KernelArg.i64(7), KernelArg.i64(9), KernelArg.i64(11)),
        a.subList(19, 23));
  }

  @Test
  void groupedQueryKeysAndValuesHaveRowsOfKvHeads() {
    FlashLaunch l = FlashLaunch.of(GpuDtype.FP32, 2, 10, 20, 6, 2, 16);
    List<KernelArg> a = l.arguments(100, 200, 300, 400, 500, 0.5f, AttentionMask.NONE);
    assertEquals(KernelArg.i32(6 * 16), a.get(2)); // q rows: every query head
    assertEquals(KernelArg.i64(20 * 2 * 16), a.get(4)); // k batch stride: 2 K/V heads a row
    assertEquals(KernelArg.i32(2 * 16), a.get(5));
    assertEquals(KernelArg.i64(20 * 2 * 16), a.get(7));
    assertEquals(KernelArg.i32(2 * 16), a.get(8));
    assertEquals(KernelArg.i32(6 * 16), a.get(11)); // out rows like q
    assertEquals(List.of(KernelArg.i32(6), KernelArg.i32(2)), a.subList(15, 17));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FlashLaunch.of(GpuDtype.FP32, 1, 4, 4, 6, 4, 16));
    assertEquals("kvHeads must divide heads (6), got 4", e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> FlashLaunch.of(GpuDtype.FP32, 1, 4, 4, 6, 0, 16));
  }

  @Test
  void rejectsWhatTheKernelCannotTake() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FlashLaunch.of(GpuDtype.FP32, 1, 4, 4, 1, 300));
    assertEquals("the CUDA flash kernel takes head dims 1..256, got 300 (use the CPU kernel)",
        e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> FlashLaunch.of(GpuDtype.FP32, 70_000, 4, 4, 1, 8));
  }
}
