package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class KernelSelectionTest {
  private static final int A100_SHARED = 166912;
  private static final int H100_SHARED = 232448;

  @Test
  void halfPrecisionOnSm80AndUpUsesTensorCores() {
    for (GpuDtype t : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      for (int d : new int[] {1, 33, 64, 128}) {
        assertTrue(KernelSelection.choose(t, d, 80, A100_SHARED, true).tensorCores());
        assertTrue(KernelSelection.choose(t, d, 90, H100_SHARED, true).tensorCores());
      }
    }
  }

  @Test
  void fallsBackToTheFp32KernelWithTheReason() {
    var fp32 = KernelSelection.choose(GpuDtype.FP32, 64, 90, H100_SHARED, true);
    assertFalse(fp32.tensorCores());
    assertTrue(fp32.reason().contains("fp32 inputs"), fp32.reason());
    var old = KernelSelection.choose(GpuDtype.BF16, 64, 75, 65536, true);
    assertFalse(old.tensorCores());
    assertTrue(old.reason().contains("sm_75 is below sm_80"), old.reason());
    // Head dim 256 needs 194,560 bytes: more than an A100 block may have, fine on an H100.
    var big = KernelSelection.choose(GpuDtype.FP16, 256, 80, A100_SHARED, true);
    assertFalse(big.tensorCores());
    assertTrue(big.reason().contains("needs 194560 bytes"), big.reason());
    assertTrue(KernelSelection.choose(GpuDtype.FP16, 256, 90, H100_SHARED, true).tensorCores());
    var off = KernelSelection.choose(GpuDtype.FP16, 64, 90, H100_SHARED, false);
    assertFalse(off.tensorCores());
    assertTrue(off.reason().contains("-Dmosaic.gpu.tensorCores=false"), off.reason());
  }
}
