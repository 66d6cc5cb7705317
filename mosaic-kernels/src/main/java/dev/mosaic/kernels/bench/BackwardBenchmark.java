package dev.mosaic.kernels.bench;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.CpuFlashAttentionBackward;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.simd.BackwardVectorization;
import dev.mosaic.kernels.simd.PeakFlops;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * {@code mosaic bench kernel --backward}: the CPU attention backward next to the forward kernel,
 * both timed in the same run on the same inputs, and the FMA peak measured in that run. FLOPs:
 * forward 4·n²·d·heads, backward 2.5× that (FlashAttention-2's convention: five products to the
 * forward's two), half of each for causal.
 */
public final class BackwardBenchmark {

  /** One measured configuration: forward and backward medians over the same runs' count. */
  public record Row(int n, boolean causal, double forwardSeconds, double backwardSeconds,
      double forwardGflops, double backwardGflops, long liveHeapBytes, int runs) {
    public double ratio() {
      return backwardGflops / forwardGflops;
    }
  }

  private final int heads;
  private final int headDim;
  private final int threads;
  private final double minSeconds;

  public BackwardBenchmark(int heads, int headDim, int threads, double minSeconds) {
    this.heads = heads;
    this.headDim = headDim;
    this.threads = threads;
    this.minSeconds = minSeconds;
  }

  public List<Row> run(int[] lengths, PrintStream log) {
    List<Row> rows = new ArrayList<>();
    Random rnd = new Random(42);
    float scale = (float) (1 / Math.sqrt(headDim));
    try (CpuFlashAttention fwd = new CpuFlashAttention(threads);
        CpuFlashAttentionBackward bwd = new CpuFlashAttentionBackward(threads)) {
      warmUp(fwd, bwd, rnd);
      for (int n : lengths) {
        BlockView q = BlockView.of(Tensor.randn(rnd, 1f, n, heads, headDim));
        BlockView k = BlockView.of(Tensor.randn(rnd, 1f, n, heads, headDim));
        BlockView v = BlockView.of(Tensor.randn(rnd, 1f, n, heads, headDim));
        BlockView dOut = BlockView.of(Tensor.randn(rnd, 1f, n, heads, headDim));
        BlockView out = BlockView.of(Tensor.zeros(n, heads, headDim));
        BlockView dq = BlockView.of(Tensor.zeros(n, heads, headDim));
        BlockView dk = BlockView.of(Tensor.zeros(n, heads, headDim));
        BlockView dv = BlockView.of(Tensor.zeros(n, heads, headDim));
        float[] lse = new float[n * heads];
        for (boolean causal : new boolean[] {false, true}) {
          AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
          Runnable forward = () -> fwd.forward(q, k, v, scale, mask, out, lse);
          Runnable backward =
              () -> bwd.backward(q, k, v, out, lse, dOut, scale, mask, dq, dk, dv, false);
          double flops = 4.0 * n * n * headDim * heads * (causal ? 0.5 : 1.0);
          List<Double> fTimes = new ArrayList<>();
          List<Double> bTimes = new ArrayList<>();
          double spent = 0;
          // Alternate forward and backward so both see the same machine load.
          while (fTimes.size() < 3 && (spent < minSeconds || fTimes.isEmpty())) {
            double f = time(forward);
            double b = time(backward);
            fTimes.add(f);
            bTimes.add(b);
            spent += f + b;
          }
          double fm = KernelBenchmark.median(fTimes);
          double bm = KernelBenchmark.median(bTimes);
          Row row = new Row(n, causal, fm, bm, flops / fm / 1e9, 2.5 * flops / bm / 1e9,
              KernelBenchmark.liveHeap(), fTimes.size());
          rows.add(row);
          log.printf("  n=%-6d causal=%-5s forward %8.3f s %6.1f GFLOP/s   backward %8.3f s"
              + " %6.1f GFLOP/s (%.0f%% of forward)  live heap %s (%d runs)%n", n, causal, fm,
              row.forwardGflops(), bm, row.backwardGflops(), 100 * row.ratio(),
              KernelBenchmark.mib(row.liveHeapBytes()), row.runs());
        }
      }
    }
    return rows;
  }

  private static double time(Runnable r) {
    long t0 = System.nanoTime();
    r.run();
    return (System.nanoTime() - t0) / 1e9;
  }

  /** Runs a small problem for a few seconds so the timed runs see compiled code. */
  private void warmUp(CpuFlashAttention fwd, CpuFlashAttentionBackward bwd, Random rnd) {
    int n = 512;
    BlockView x = BlockView.of(Tensor.randn(rnd, 1f, n, heads, headDim));
    BlockView out = BlockView.of(Tensor.zeros(n, heads, headDim));
    BlockView dq = BlockView.of(Tensor.zeros(n, heads, headDim));
    BlockView dk = BlockView.of(Tensor.zeros(n, heads, headDim));
    BlockView dv = BlockView.of(Tensor.zeros(n, heads, headDim));
    float[] lse = new float[n * heads];
    long end = System.nanoTime() + 3_000_000_000L;
    for (int i = 0; System.nanoTime() < end; i++) {
      AttentionMask mask = i % 2 == 0 ? AttentionMask.NONE : AttentionMask.causalMask();
      fwd.forward(x, x, x, 0.125f, mask, out, lse);
      bwd.backward(x, x, x, out, lse, x, 0.125f, mask, dq, dk, dv, false);
    }
  }

  public static void main(String[] args) {
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    int[] lengths = args.length > 1
        ? Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray()
        : new int[] {1024, 4096, 16384};
    int heads = args.length > 2 ? Integer.parseInt(args[2]) : 8;
    int headDim = args.length > 3 ? Integer.parseInt(args[3]) : 64;
    report(System.out, threads, lengths, heads, headDim);
  }

  /** Runs the whole benchmark and prints the table. */
  public static List<Row> report(PrintStream out, int threads, int[] lengths, int heads,
      int headDim) {
    out.printf("Mosaic attention backward benchmark: %d heads x head dim %d, fp32, %d threads,"
        + " ops %s%n", heads, headDim, threads, BackwardVectorization.ops().name());
    double peak = PeakFlops.get().measure(threads, 1500) / 1e9;
    out.printf("Measured FMA peak on %d threads: %.1f GFLOP/s%n", threads, peak);
    List<Row> rows = new BackwardBenchmark(heads, headDim, threads, 2.0).run(lengths, out);
    out.println();
    out.println("| n | causal | forward | forward GFLOP/s | backward | backward GFLOP/s"
        + " | backward / forward | % of FMA peak | live heap after run |");
    out.println("|---:|:---:|---:|---:|---:|---:|---:|---:|---:|");
    for (Row r : rows) {
      out.printf("| %d | %s | %.3f s | %.1f | %.3f s | %.1f | %.0f%% | %.0f%% | %s |%n", r.n(),
          r.causal() ? "yes" : "no", r.forwardSeconds(), r.forwardGflops(), r.backwardSeconds(),
          r.backwardGflops(), 100 * r.ratio(), 100 * r.backwardGflops() / peak,
          KernelBenchmark.mib(r.liveHeapBytes()));
    }
    out.printf("FMA peak (same run, %d threads): %.1f GFLOP/s; backward FLOPs = 2.5 x forward;"
        + " max heap (-Xmx) %s%n", threads, peak, KernelBenchmark.mib(Runtime.getRuntime()
        .maxMemory()));
    return rows;
  }
}
