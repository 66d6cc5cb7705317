package dev.mosaic.kernels.bench;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.simd.PeakFlops;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * {@code mosaic bench kernel}: the CPU flash kernel at growing sequence lengths, causal and not,
 * next to this machine's FMA peak measured in the same run. FLOPs = 4·n²·d·heads (half for
 * causal), the convention FlashAttention papers use.
 */
public final class KernelBenchmark {

  /** One measured configuration. */
  public record Row(int n, boolean causal, double medianSeconds, double gflops, long liveHeapBytes,
      int runs) {}

  private final int heads;
  private final int headDim;
  private final int threads;
  private final double minSeconds;

  public KernelBenchmark(int heads, int headDim, int threads, double minSeconds) {
    this.heads = heads;
    this.headDim = headDim;
    this.threads = threads;
    this.minSeconds = minSeconds;
  }

  public List<Row> run(int[] lengths, PrintStream log) {
    List<Row> rows = new ArrayList<>();
    Random rnd = new Random(42);
    try (CpuFlashAttention kernel = new CpuFlashAttention(threads)) {
      warmUp(kernel, rnd);
      for (int n : lengths) {
        Tensor q = Tensor.randn(rnd, 1f, n, heads, headDim);
        Tensor k = Tensor.randn(rnd, 1f, n, heads, headDim);
        Tensor v = Tensor.randn(rnd, 1f, n, heads, headDim);
        Tensor out = Tensor.zeros(n, heads, headDim);
        float[] lse = new float[n * heads];
        for (boolean causal : new boolean[] {false, true}) {
          AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
          Runnable call = () -> kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
              (float) (1 / Math.sqrt(headDim)), mask, BlockView.of(out), lse);
          double flops = 4.0 * n * n * headDim * heads * (causal ? 0.5 : 1.0);
          long t0 = System.nanoTime();
          call.run(); // warm-up, also JIT
          double first = (System.nanoTime() - t0) / 1e9;
          List<Double> times = new ArrayList<>();
          double spent = 0;
          while (times.size() < 3 && (spent < minSeconds || times.isEmpty())) {
            if (first > 3 * minSeconds && times.isEmpty()) {
              times.add(first); // a single long run is already past JIT warm-up
              break;
            }
            long s = System.nanoTime();
            call.run();
            double t = (System.nanoTime() - s) / 1e9;
            times.add(t);
            spent += t;
          }
          double median = median(times);
          Row row = new Row(n, causal, median, flops / median / 1e9, liveHeap(), times.size());
          rows.add(row);
          log.printf("  n=%-6d causal=%-5s %9.4f s  %7.1f GFLOP/s  live heap %s (%d runs)%n", n,
              causal, median, row.gflops(), mib(row.liveHeapBytes()), row.runs());
        }
      }
    }
    return rows;
  }

  /** Runs a small problem for about a second so the timed runs see compiled code. */
  private void warmUp(CpuFlashAttention kernel, Random rnd) {
    int n = 512;
    Tensor x = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor out = Tensor.zeros(n, heads, headDim);
    float[] lse = new float[n * heads];
    long end = System.nanoTime() + 1_500_000_000L;
    for (int i = 0; System.nanoTime() < end; i++) {
      AttentionMask mask = i % 2 == 0 ? AttentionMask.NONE : AttentionMask.causalMask();
      kernel.forward(BlockView.of(x), BlockView.of(x), BlockView.of(x), 0.125f, mask,
          BlockView.of(out), lse);
    }
  }

  public static void main(String[] args) {
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    int[] lengths = args.length > 1
        ? Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray()
        : new int[] {1024, 4096, 16384, 65536};
    report(System.out, threads, lengths, 8, 64);
  }

  /** Runs the whole benchmark and prints the table. */
  public static List<Row> report(PrintStream out, int threads, int[] lengths, int heads,
      int headDim) {
    out.printf("Mosaic kernel benchmark: %d heads x head dim %d, fp32, %d threads, ops %s%n", heads,
        headDim, threads, VectorizationProvider.ops().name());
    double peak = PeakFlops.get().measure(threads, 1500) / 1e9;
    out.printf("Measured FMA peak on %d threads: %.1f GFLOP/s%n", threads, peak);
    List<Row> rows = new KernelBenchmark(heads, headDim, threads, 2.0).run(lengths, out);
    out.println();
    out.println("| n | causal | median time | GFLOP/s | % of FMA peak | live heap after run |");
    out.println("|---:|:---:|---:|---:|---:|---:|");
    for (Row r : rows) {
      out.printf("| %d | %s | %.3f s | %.1f | %.0f%% | %s |%n", r.n(), r.causal() ? "yes" : "no",
          r.medianSeconds(), r.gflops(), 100 * r.gflops() / peak, mib(r.liveHeapBytes()));
    }
    out.printf("FMA peak (same run, %d threads): %.1f GFLOP/s; max heap (-Xmx) %s%n", threads, peak,
        mib(Runtime.getRuntime().maxMemory()));
    return rows;
  }

  static double median(List<Double> xs) {
    double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  }

  /**
   * Heap still reachable after a full GC, right after the runs: the inputs, the output and the
   * kernel's per-thread scratch. (Peaks of the heap pools would count garbage too.)
   */
  static long liveHeap() {
    System.gc();
    Runtime rt = Runtime.getRuntime();
    return rt.totalMemory() - rt.freeMemory();
  }

  static String mib(long bytes) {
    return String.format("%.0f MiB", bytes / (1024.0 * 1024));
  }
}
