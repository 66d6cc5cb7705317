package dev.mosaic.kernels.gpu;

import java.util.List;
import java.util.Locale;

/**
 * A roofline ESTIMATE (not a measurement) of the two forward kernels on A100 and H100, worked
 * from their tile sizes: per 64×64 tile pair a thread block issues a known number of tensor-core
 * FLOPs, fp32 FMA FLOPs, shared-memory bytes and exp2 calls; each SM unit has a datasheet
 * throughput per clock, and the slowest unit bounds the tile. docs/gpu.md shows the working.
 *
 * <p>Counts per tile pair at padded head dim D (multiple of 16 for tensor cores):
 * <ul>
 *   <li>fp32 FMA kernel ({@code flash_forward.cu}, 8 warps): 4·64·64·D FLOPs on the FP32 cores.
 *       Shared memory in 128-byte wavefronts: per warp and head dim one Q broadcast and 16 K loads
 *       (4 distinct addresses each), per warp and key one P broadcast and D/4 V loads, so
 *       {@code 8·(17·D + 64·(1 + D/4)) = 264·D + 512} wavefronts.</li>
 *   <li>tensor-core kernel ({@code flash_forward_tc.cu}, 4 warps): 4·64·64·D tensor FLOPs.
 *       Shared-memory bytes: WMMA A/B fragments for S (Q reloaded for every 16 keys) and for P·V,
 *       2·D fragments each, 1,024 bytes per fp16 fragment (fp16 fragments hold every element
 *       twice) or 512 per bf16 fragment; O load+store around P·V and the rescale, 1,024·D; the
 *       K and V tiles written by cp.async, 256·D; S stored, read twice, P written: 57,344.</li>
 *   <li>both: 64·64 exp2 (the SFU, 16 per clock per SM) and about 16 FP32 instructions per score
 *       for the softmax (an assumption, not read from SASS: this nvcc has no disassembler).</li>
 * </ul>
 * Not modelled: latency (the tensor-core kernel has 4 or 8 warps per SM: see the occupancy in
 * the ptxas report), bank conflicts, L2/HBM (K/V are re-read once per query tile; at 64 FLOPs
 * per byte of K/V that stays below the HBM roofline only while L2 serves most of it), launch
 * overhead, causal tiles on the diagonal.
 */
public final class RooflineEstimate {

  /** Datasheet figures per GPU (dense, boost clock). */
  public record Gpu(String name, int sms, double clockGhz, double tensorFlopsPerClockPerSm,
      int fp32LanesPerSm, double smemBytesPerClockPerSm, int sfuPerClockPerSm) {
    double peakTensorTflops() {
      return tensorFlopsPerClockPerSm * sms * clockGhz / 1e3;
    }

    double peakFp32Tflops() {
      return 2.0 * fp32LanesPerSm * sms * clockGhz / 1e3;
    }
  }

  /** A100 SXM4: 108 SMs at 1.41 GHz, 312 TFLOP/s fp16/bf16 dense, 19.5 fp32. */
  public static final Gpu A100 = new Gpu("A100-SXM4", 108, 1.41, 2048, 64, 128, 16);
  /** H100 SXM5: 132 SMs at 1.83 GHz (~989 TFLOP/s fp16/bf16 dense with wgmma), 67 fp32. */
  public static final Gpu H100 = new Gpu("H100-SXM5", 132, 1.83, 4096, 128, 128, 16);
  public static final List<Gpu> GPUS = List.of(A100, H100);

  /** Which kernel. */
  public enum Kernel { FP32_FMA, TENSOR_CORE }

  /** Clocks per tile pair on one SM for each unit, the binding one, and TFLOP/s for the GPU. */
  public record Estimate(Gpu gpu, Kernel kernel, GpuDtype dtype, int headDim, double tensorClocks,
      double fmaClocks, double smemClocks, double sfuClocks, double aluClocks, String bound,
      double tflops, double percentOfPeak) {

    public String describe() {
      return String.format(Locale.ROOT, "%-10s %-11s %-4s d=%-3d %7.1f TFLOP/s (%4.1f%% of %s"
          + " peak), bound by %s", gpu.name(), kernel == Kernel.TENSOR_CORE ? "tensor-core"
          : "fp32-FMA", dtype.suffix(), headDim, tflops, percentOfPeak,
          kernel == Kernel.TENSOR_CORE ? "tensor" : "fp32", bound);
    }
  }

  private RooflineEstimate() {}

  /** The estimate for one kernel, input type and head dim on one GPU. */
  public static Estimate estimate(Gpu gpu, Kernel kernel, GpuDtype dtype, int headDim) {
    if (headDim < 1 || headDim > FlashLaunch.MAX_HEAD_DIM) {
      throw new IllegalArgumentException("headDim must be 1.." + FlashLaunch.MAX_HEAD_DIM
          + ", got " + headDim);
    }
    if (kernel == Kernel.TENSOR_CORE && dtype == GpuDtype.FP32) {
      throw new IllegalArgumentException("the tensor-core kernel takes fp16 or bf16, got fp32");
    }
    final double scores = 64.0 * 64.0;
    double tensor = 0;
    double fma = 0;
    double smem;
    double flops;
    if (kernel == Kernel.TENSOR_CORE) {
      int d = (headDim + 15) / 16 * 16;
      flops = 4 * scores * d;
      tensor = flops / gpu.tensorFlopsPerClockPerSm();
      double fragment = dtype == GpuDtype.FP16 ? 1024 : 512;
      double bytes = 2 * (2.0 * d) * fragment + 1024.0 * d + 256.0 * d + 57344;
      smem = bytes / gpu.smemBytesPerClockPerSm();
    } else {
      int d = headDim;
      flops = 4 * scores * d;
      fma = flops / (2.0 * gpu.fp32LanesPerSm());
      smem = 264.0 * d + 512; // wavefronts, one per clock
    }
    double sfu = scores / gpu.sfuPerClockPerSm();
    double alu = 16 * scores / gpu.fp32LanesPerSm();
    // The FMA kernel's softmax shares the FP32 cores with its dot products.
    if (kernel == Kernel.FP32_FMA) {
      fma += alu;
      alu = 0;
    }
    double[] clocks = {tensor, fma, smem, sfu, alu};
    String[] names = {"tensor cores", "FP32 FMA", "shared memory", "SFU (exp2)", "FP32 softmax"};
    int worst = 0;
    for (int i = 1; i < clocks.length; i++) {
      if (clocks[i] > clocks[worst]) {
        worst = i;
      }
    }
    double tflops = flops / clocks[worst] * gpu.sms() * gpu.clockGhz() / 1e3;
    double peak = kernel == Kernel.TENSOR_CORE ? gpu.peakTensorTflops() : gpu.peakFp32Tflops();
    return new Estimate(gpu, kernel, dtype, headDim, tensor, fma, smem, sfu, alu, names[worst],
        tflops, 100 * tflops / peak);
  }
}
