package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.RooflineEstimate.Estimate;
import dev.mosaic.kernels.gpu.RooflineEstimate.Kernel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The roofline estimate reproduces the working in docs/gpu.md (hand-computed figures). */
class RooflineEstimateTest {

  @Test
  void a100HeadDim128MatchesTheDocumentedWorking() {
    // bf16: S and P.V fragments 2·(2·128)·512 B + O 1024·128 + cp.async 256·128 + 57344
    // = 483,328 B = 3,776 clocks at 128 B/clock, against 2,097,152 / 2048 = 1,024 tensor clocks.
    Estimate bf16 = RooflineEstimate.estimate(RooflineEstimate.A100, Kernel.TENSOR_CORE,
        GpuDtype.BF16, 128);
    assertEquals(3776, bf16.smemClocks(), 1e-9);
    assertEquals(1024, bf16.tensorClocks(), 1e-9);
    assertEquals("shared memory", bf16.bound());
    assertEquals(84.6, bf16.tflops(), 0.05);
    // fp16 fragments hold every element twice: 745,472 B = 5,824 clocks.
    Estimate fp16 = RooflineEstimate.estimate(RooflineEstimate.A100, Kernel.TENSOR_CORE,
        GpuDtype.FP16, 128);
    assertEquals(5824, fp16.smemClocks(), 1e-9);
    assertEquals(54.8, fp16.tflops(), 0.05);
    // fp32 FMA kernel: 264·128 + 512 = 34,304 wavefronts against 16,384 + 1,024 FP32 clocks.
    Estimate fma = RooflineEstimate.estimate(RooflineEstimate.A100, Kernel.FP32_FMA,
        GpuDtype.FP32, 128);
    assertEquals(34304, fma.smemClocks(), 1e-9);
    assertEquals(17408, fma.fmaClocks(), 1e-9);
    assertEquals(9.3, fma.tflops(), 0.05);
  }

  @Test
  void tensorCoresBeatTheFmaKernelEverywhereAndStayBelowPeak() {
    for (RooflineEstimate.Gpu g : RooflineEstimate.GPUS) {
      for (int d : new int[] {16, 32, 40, 64, 128, 256}) {
        double fma = RooflineEstimate.estimate(g, Kernel.FP32_FMA, GpuDtype.FP16, d).tflops();
        for (GpuDtype t : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
          Estimate tc = RooflineEstimate.estimate(g, Kernel.TENSOR_CORE, t, d);
          assertTrue(tc.tflops() > fma, tc.describe());
          assertTrue(tc.percentOfPeak() > 0 && tc.percentOfPeak() < 100, tc.describe());
        }
      }
    }
  }

  @Test
  void refusesWhatTheKernelsDoNotTake() {
    assertThrows(IllegalArgumentException.class, () -> RooflineEstimate.estimate(
        RooflineEstimate.A100, Kernel.TENSOR_CORE, GpuDtype.FP32, 64));
    assertThrows(IllegalArgumentException.class, () -> RooflineEstimate.estimate(
        RooflineEstimate.H100, Kernel.FP32_FMA, GpuDtype.FP32, 257));
  }

  @Test
  void withoutAGpuTheBenchmarkSaysSoAndMeasuresNothing() {
    org.junit.jupiter.api.Assumptions.assumeFalse(CudaFlashAttention.available(),
        "a GPU is present: the no-GPU path does not apply");
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int code = GpuKernelBenchmark.report(new PrintStream(bytes, true, StandardCharsets.UTF_8),
        new int[] {1024}, 8, 64);
    String out = bytes.toString(StandardCharsets.UTF_8);
    assertEquals(GpuKernelBenchmark.NO_GPU, code, out);
    assertTrue(out.startsWith("No GPU is present, so nothing was measured: "), out);
    assertTrue(out.contains("Roofline ESTIMATES only"), out);
    assertTrue(out.contains("A100-SXM4  tensor-core bf16 d=64"), out);
    assertTrue(out.contains("H100-SXM5  fp32-FMA"), out);
    assertTrue(!out.contains("kernel ms"), out);
  }
}
