package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.CudaFlashAttention;
import dev.mosaic.spark.cli.CliRun.Result;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** {@code mosaic bench kernel --device gpu} on a machine without a GPU, and its flag checks. */
class BenchKernelGpuTest {

  @Test
  void withoutAGpuSaysSoPrintsOnlyEstimatesAndExits3() {
    Assumptions.assumeFalse(CudaFlashAttention.available(), "a GPU is present here");
    Result r = run("bench", "kernel", "--device", "gpu", "--head-dim", "128");
    assertEquals(3, r.code(), r.out() + r.err());
    assertTrue(r.out().startsWith("No GPU is present, so nothing was measured: "), r.out());
    assertTrue(r.out().contains("Roofline ESTIMATES only (docs/gpu.md; never measured):"),
        r.out());
    assertTrue(r.out().contains("A100-SXM4  tensor-core bf16 d=128    84.6 TFLOP/s"), r.out());
  }

  @Test
  void refusesCpuOnlyFlagsAndUnknownDevices() {
    Result r = run("bench", "kernel", "--device", "gpu", "--backward");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--device gpu takes only --lengths, --heads and --head-dim"),
        r.err());
    r = run("bench", "kernel", "--device", "tpu");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--device must be cpu or gpu, got 'tpu'"), r.err());
  }

  @Test
  void helpListsTheGpuBench() {
    Result r = run("bench", "--help");
    assertTrue((r.out() + r.err()).contains("mosaic bench kernel --device gpu"), r.out() + r.err());
  }
}
