package dev.mosaic.kernels.bench;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.simd.PeakFlops;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * {@code mosaic bench kernel --vs-pytorch}: Mosaic's kernel and a peer ({@link AttentionPeer}) on
 * the same inputs and thread count, calls alternating (ours, theirs, ours, ...) so that load from
 * other processes hits both alike; medians, their ratio and the largest output difference. With
 * no peer (it could not load) only Mosaic's column is filled.
 */
public final class KernelComparison {

  /** One configuration; peer fields are NaN without a peer. */
  public record Row(int headDim, int n, boolean causal, double oursSeconds, double oursGflops,
      double peerSeconds, double peerGflops, double maxAbsDiff, int runs, double oursCpuSeconds,
      double peerCpuSeconds) {
    /** How many times faster Mosaic is than the peer (peer time / our time). */
    public double speedup() {
      return peerSeconds / oursSeconds;
    }

    /** The same in CPU time of this process (both run in it): less exposed to other load. */
    public double cpuSpeedup() {
      // The process clock ticks coarsely (~10 ms): a zero reading says nothing.
      return peerCpuSeconds > 0 && oursCpuSeconds > 0 ? peerCpuSeconds / oursCpuSeconds
          : Double.NaN;
    }
  }

  private final int heads;
  private final int threads;
  private final double minSeconds;

  public KernelComparison(int heads, int threads, double minSeconds) {
    this.heads = heads;
    this.threads = threads;
    this.minSeconds = minSeconds;
  }

  /** Every head dim × length × (full, causal); {@code peer} may be null. */
  public List<Row> run(int[] headDims, int[] lengths, AttentionPeer peer, PrintStream log) {
    List<Row> rows = new ArrayList<>();
    Random rnd = new Random(42);
    try (CpuFlashAttention kernel = new CpuFlashAttention(threads)) {
      for (int d : headDims) {
        warmUp(kernel, rnd, d);
        for (int n : lengths) {
          float[] q = Tensor.randn(rnd, 1f, n, heads, d).data();
          float[] k = Tensor.randn(rnd, 1f, n, heads, d).data();
          float[] v = Tensor.randn(rnd, 1f, n, heads, d).data();
          for (boolean causal : new boolean[] {false, true}) {
            Row row = measure(kernel, peer, q, k, v, n, d, causal);
            rows.add(row);
            log.printf("  d=%-4d n=%-6d causal=%-5s mosaic %8.4f s %6.1f GFLOP/s | peer %s%n", d, n,
                causal, row.oursSeconds(), row.oursGflops(), peer == null ? "-"
                    : String.format("%8.4f s %6.1f GFLOP/s  x%.2f (cpu %s)  max|diff| %.1e",
                        row.peerSeconds(), row.peerGflops(), row.speedup(),
                        Double.isNaN(row.cpuSpeedup()) ? "-"
                            : String.format("x%.2f", row.cpuSpeedup()), row.maxAbsDiff()));
          }
        }
      }
    }
    return rows;
  }

  /**
   * Small calls, at least a second's worth and at least 200 of them, so that the timed ones see
   * compiled code: on a loaded machine a second of wall time may be too little CPU for C2.
   */
  private void warmUp(CpuFlashAttention kernel, Random rnd, int d) {
    Tensor x = Tensor.randn(rnd, 1f, 256, heads, d);
    Tensor out = Tensor.zeros(256, heads, d);
    float[] lse = new float[256 * heads];
    long end = System.nanoTime() + 1_000_000_000L;
    for (int i = 0; i < 200 || System.nanoTime() < end; i++) {
      kernel.forward(BlockView.of(x), BlockView.of(x), BlockView.of(x), 0.125f,
          i % 2 == 0 ? AttentionMask.NONE : AttentionMask.causalMask(), BlockView.of(out), lse);
    }
  }

  private Row measure(CpuFlashAttention kernel, AttentionPeer peer, float[] q, float[] k,
      float[] v, int n, int d, boolean causal) {
    float scale = (float) (1 / Math.sqrt(d));
    Tensor qt = Tensor.of(q, n, heads, d);
    Tensor kt = Tensor.of(k, n, heads, d);
    Tensor vt = Tensor.of(v, n, heads, d);
    Tensor out = Tensor.zeros(n, heads, d);
    float[] lse = new float[n * heads];
    AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
    Runnable ours = () -> kernel.forward(BlockView.of(qt), BlockView.of(kt), BlockView.of(vt),
        scale, mask, BlockView.of(out), lse);
    double flops = 4.0 * n * n * d * heads * (causal ? 0.5 : 1.0);
    AttentionPeer.Call theirs = peer == null ? null
        : peer.prepare(q, k, v, n, heads, d, scale, causal);
    try {
      // Warm-up: JIT (ours), TorchScript's profiling runs (theirs).
      double first = time(ours);
      for (int i = 0; i < 2 && first < minSeconds; i++) {
        time(ours);
        if (theirs != null) {
          time(theirs::run);
        }
      }
      if (theirs != null) {
        time(theirs::run);
      }
      List<Double> oursTimes = new ArrayList<>();
      List<Double> theirTimes = new ArrayList<>();
      List<Double> oursCpu = new ArrayList<>();
      List<Double> theirCpu = new ArrayList<>();
      double spent = 0;
      while (oursTimes.size() < 3 || (spent < minSeconds && oursTimes.size() < 15)) {
        double c0 = cpuSeconds();
        double t = time(ours);
        oursCpu.add(cpuSeconds() - c0);
        oursTimes.add(t);
        spent += t;
        if (theirs != null) {
          c0 = cpuSeconds();
          double p = time(theirs::run);
          theirCpu.add(cpuSeconds() - c0);
          theirTimes.add(p);
          spent += p;
        }
      }
      double mine = KernelBenchmark.median(oursTimes);
      double peerTime = theirs == null ? Double.NaN : KernelBenchmark.median(theirTimes);
      double diff = theirs == null ? Double.NaN : maxAbsDiff(out.data(), theirs.output());
      return new Row(d, n, causal, mine, flops / mine / 1e9, peerTime, flops / peerTime / 1e9,
          diff, oursTimes.size(), KernelBenchmark.median(oursCpu),
          theirs == null ? Double.NaN : KernelBenchmark.median(theirCpu));
    } finally {
      if (theirs != null) {
        theirs.close();
      }
    }
  }

  /** CPU time of this whole process (all its threads), in seconds; NaN where unsupported. */
  private static double cpuSeconds() {
    java.lang.management.OperatingSystemMXBean os =
        java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    return os instanceof com.sun.management.OperatingSystemMXBean sun
        ? sun.getProcessCpuTime() / 1e9 : Double.NaN;
  }

  private static double time(Runnable r) {
    long t0 = System.nanoTime();
    r.run();
    return (System.nanoTime() - t0) / 1e9;
  }

  static double maxAbsDiff(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new IllegalStateException("peer output has " + b.length + " values, expected "
          + a.length);
    }
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }

  /**
   * Without the CLI: {@code java --add-modules jdk.incubator.vector -Dmosaic.home=REPO -cp
   * mosaic-kernels.jar dev.mosaic.kernels.bench.KernelComparison [threads [headDims [lengths]]]}.
   */
  public static void main(String[] args) {
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    int[] dims = args.length > 1 ? ints(args[1]) : new int[] {64};
    int[] lengths = args.length > 2 ? ints(args[2]) : new int[] {1024, 4096};
    PeerLoader.Result loaded = PeerLoader.load(threads);
    try {
      report(System.out, threads, dims, lengths, 8, loaded.peer(), loaded.whyNot());
    } finally {
      if (loaded.peer() != null) {
        loaded.peer().close();
      }
    }
  }

  private static int[] ints(String csv) {
    return java.util.Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
  }

  /** Runs the whole comparison and prints the table (markdown) for docs/performance.md. */
  public static List<Row> report(PrintStream out, int threads, int[] headDims, int[] lengths,
      int heads, AttentionPeer peer, String peerMissingReason) {
    out.printf("Mosaic vs %s: %d heads, fp32, %d threads, ops %s%n",
        peer == null ? "(no peer)" : peer.name(), heads, threads,
        VectorizationProvider.ops().name());
    if (peer == null) {
      out.println("PyTorch peer not available: " + peerMissingReason
          + " (running Mosaic's kernel alone)");
    }
    double peak = PeakFlops.get().measure(threads, 1500) / 1e9;
    out.printf("Measured FMA peak on %d threads: %.1f GFLOP/s%n", threads, peak);
    List<Row> rows = new KernelComparison(heads, threads, 2.0).run(headDims, lengths, peer, out);
    out.println();
    out.println("| head dim | n | causal | Mosaic GFLOP/s | % of peak | PyTorch GFLOP/s"
        + " | Mosaic / PyTorch | same, in CPU time | max abs diff | runs |");
    out.println("|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|");
    for (Row r : rows) {
      out.printf("| %d | %d | %s | %.1f | %.0f%% | %s | %s | %s | %s | %d |%n", r.headDim(),
          r.n(), r.causal() ? "yes" : "no", r.oursGflops(), 100 * r.oursGflops() / peak,
          peer == null ? "-" : String.format("%.1f", r.peerGflops()),
          peer == null ? "-" : String.format("%.2f×", r.speedup()),
          peer == null || Double.isNaN(r.cpuSpeedup()) ? "-"
              : String.format("%.2f×", r.cpuSpeedup()),
          peer == null ? "-" : String.format("%.1e", r.maxAbsDiff()), r.runs());
    }
    out.printf("FMA peak (same run, %d threads): %.1f GFLOP/s. Times are medians of alternating"
        + " calls on the same inputs; CPU time is this process's, per call (it includes threads"
        + " spinning at a barrier).%n", threads, peak);
    if (looksLikeASlowJvm(rows, peak)) {
      out.println("WARNING: Mosaic ran most cells at under half of PyTorch's speed (or under 8% of"
          + " the peak): this JVM's C2 most likely compiled a kernel method without its vector"
          + " intrinsics (docs/performance.md, \"Slow JVMs\"). Rerun rather than read this table.");
    }
    return rows;
  }

  /**
   * Whether most cells ran as a JVM does whose C2 compiled a kernel method without its vector
   * intrinsics: 0.2–0.4× PyTorch and 5–7% of the peak at every size, where a sound JVM, even on a
   * loaded machine, stays above 0.55× and 10% (docs/performance.md, "Slow JVMs").
   */
  static boolean looksLikeASlowJvm(List<Row> rows, double peak) {
    long slow = rows.stream().filter(r -> Double.isNaN(r.speedup())
        ? r.oursGflops() < 0.08 * peak : r.speedup() < 0.5).count();
    return !rows.isEmpty() && 2 * slow > rows.size();
  }
}
