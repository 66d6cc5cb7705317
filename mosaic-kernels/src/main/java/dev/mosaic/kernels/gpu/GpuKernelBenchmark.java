package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * {@code mosaic bench kernel --device gpu}: the CUDA forward kernels on device 0 in fp32, fp16 and
 * bf16 (fp16/bf16 on tensor cores where {@link KernelSelection} picks them), timed with CUDA
 * events around the launch alone, next to the {@link RooflineEstimate} for the nearest datasheet
 * GPU. Without a usable GPU it says so, prints the estimates marked as such, and measures nothing.
 */
public final class GpuKernelBenchmark {
  /** Exit code when no GPU is present (as {@code selftest --require-gpu}). */
  public static final int NO_GPU = 3;

  private GpuKernelBenchmark() {}

  /** Runs (or explains why not); returns 0, or {@link #NO_GPU}. */
  public static int report(PrintStream out, int[] lengths, int heads, int headDim) {
    if (!CudaFlashAttention.available()) {
      out.println("No GPU is present, so nothing was measured: "
          + CudaFlashAttention.unavailableReason());
      out.println("Roofline ESTIMATES only (docs/gpu.md; never measured):");
      printEstimates(out, headDim);
      return NO_GPU;
    }
    Gpu.Device device = Gpu.report().devices().get(0);
    RooflineEstimate.Gpu model = device.computeCapability() >= 90 ? RooflineEstimate.H100
        : RooflineEstimate.A100;
    out.println("GPU benchmark on " + device + "; estimates for " + model.name()
        + " (the nearest datasheet model; an ESTIMATE, see docs/gpu.md)");
    out.printf(Locale.ROOT, "%-5s %7s %-6s %-28s %10s %12s %12s%n", "dtype", "n", "mask",
        "kernel", "kernel ms", "TFLOP/s", "estimate");
    Random rnd = new Random(42);
    for (GpuDtype dtype : GpuDtype.values()) {
      try (CudaFlashAttention kernel = CudaFlashAttention.open(0, dtype)) {
        for (int n : lengths) {
          Tensor q = Tensor.randn(rnd, 1f, 1, n, heads, headDim);
          Tensor k = Tensor.randn(rnd, 1f, 1, n, heads, headDim);
          Tensor v = Tensor.randn(rnd, 1f, 1, n, heads, headDim);
          Tensor o = Tensor.zeros(1, n, heads, headDim);
          float[] lse = new float[n * heads];
          for (boolean causal : new boolean[] {false, true}) {
            AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
            List<Double> ms = new ArrayList<>();
            for (int rep = 0; rep < 6; rep++) { // the first is a warm-up
              kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
                  (float) (1 / Math.sqrt(headDim)), mask, BlockView.of(o), lse);
              if (rep > 0) {
                ms.add(kernel.lastKernelMillis());
              }
            }
            double median = median(ms);
            double flops = 4.0 * n * n * headDim * heads * (causal ? 0.5 : 1.0);
            boolean tc = kernel.lastKernel().startsWith("mosaic_flash_tc_");
            RooflineEstimate.Estimate e = RooflineEstimate.estimate(model,
                tc ? RooflineEstimate.Kernel.TENSOR_CORE : RooflineEstimate.Kernel.FP32_FMA,
                dtype, headDim);
            out.printf(Locale.ROOT, "%-5s %7d %-6s %-28s %10.3f %12.1f %12.1f%n", dtype.suffix(),
                n, causal ? "causal" : "none", kernel.lastKernel(), median,
                flops / (median * 1e-3) / 1e12, e.tflops());
          }
        }
      }
    }
    out.println("TFLOP/s = 4·n²·d·heads (half for causal) / kernel time; estimate = the roofline"
        + " bound for the full (non-causal) tile grid.");
    return 0;
  }

  /** The estimates of both kernels on both datasheet GPUs at one head dim. */
  public static void printEstimates(PrintStream out, int headDim) {
    for (RooflineEstimate.Gpu g : RooflineEstimate.GPUS) {
      // The FMA kernel converts 16-bit inputs on load: one estimate covers all three types.
      out.println("  " + RooflineEstimate.estimate(g, RooflineEstimate.Kernel.FP32_FMA,
          GpuDtype.FP32, headDim).describe());
      for (GpuDtype t : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
        out.println("  " + RooflineEstimate.estimate(g, RooflineEstimate.Kernel.TENSOR_CORE, t,
            headDim).describe());
      }
    }
  }

  private static double median(List<Double> xs) {
    double[] a = xs.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(a);
    return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  }
}
