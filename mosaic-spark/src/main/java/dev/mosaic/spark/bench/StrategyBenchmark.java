package dev.mosaic.spark.bench;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.CpuFlashAttentionBackward;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.TaskEnv;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.Strategy;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.spark.strategy.ShardLayout;
import java.io.PrintStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * {@code mosaic bench ring} and {@code mosaic bench strategies}: a distributed strategy over p
 * barrier tasks against the local kernel doing the same total work on the same cores (p tasks ×
 * task threads = local threads). Times are of the attention itself, measured inside the tasks
 * after a warm-up run, ranks aligned by a barrier before each run; the slowest rank counts.
 * Efficiency = local time / strategy time. Bytes are what each task's communicator counted.
 *
 * <p>With {@code backward} both sides time the attention backward instead (after one forward with
 * the LSE, untimed): the strategy's {@link Strategy#attendBackward} against
 * {@link CpuFlashAttentionBackward} on the whole sequence; FLOPs count 2.5× the forward's
 * (FlashAttention-2's convention).
 */
public final class StrategyBenchmark {

  /** One rank's measurements. */
  public record RankResult(int rank, double medianSeconds, long bytesSentPerRun,
      long workingSetBytes, long heapPeakBytes) implements Serializable {}

  /** The whole run. */
  public record Result(String strategy, int sp, long tokens, int heads, int headDim,
      boolean causal, double ringSeconds, double localSeconds, List<RankResult> ranks,
      boolean backward) {
    /** A forward run. */
    public Result(String strategy, int sp, long tokens, int heads, int headDim, boolean causal,
        double ringSeconds, double localSeconds, List<RankResult> ranks) {
      this(strategy, sp, tokens, heads, headDim, causal, ringSeconds, localSeconds, ranks, false);
    }

    /** FLOPs of one call: 4·n²·h·d (halved when causal), 2.5× that for the backward. */
    public double flops() {
      return 4.0 * tokens * tokens * headDim * heads * (causal ? 0.5 : 1.0)
          * (backward ? 2.5 : 1.0);
    }

    public double efficiency() {
      return localSeconds / ringSeconds;
    }
  }

  private StrategyBenchmark() {}

  public static Result run(MosaicContext ctx, StrategySpec spec, long tokens, int heads,
      int headDim, boolean causal, int reps, boolean compareLocal, PrintStream out) {
    return run(ctx, spec, tokens, heads, headDim, causal, reps, compareLocal, false, out);
  }

  /** As above; with {@code backward} times the backward pass of both sides instead. */
  public static Result run(MosaicContext ctx, StrategySpec spec, long tokens, int heads,
      int headDim, boolean causal, int reps, boolean compareLocal, boolean backward,
      PrintStream out) {
    int p = ctx.spSize();
    spec.validate(p, heads);
    ShardLayout layout = causal ? ShardLayout.zigzag(tokens, p) : ShardLayout.contiguous(tokens, p);
    out.printf("%s%s: %d tokens, %d heads x %d, %s, %d tasks x %d thread(s), %d timed runs%n",
        spec, backward ? " backward" : "", tokens, heads, headDim,
        causal ? "causal (zigzag)" : "full", p, ctx.config().taskThreads(), reps);
    ShardFunction<Integer, RankResult> fn =
        (env, it) -> rankRun(env, spec, layout, heads, headDim, causal, reps, backward);
    List<Integer> ranks = IntStream.range(0, p).boxed().toList();
    List<RankResult> results = new ArrayList<>(BarrierRunner.run(
        ctx.jsc().parallelize(ranks, p), fn, ctx.config(), RankResult.class).collect());
    double ring = results.stream().mapToDouble(RankResult::medianSeconds).max().orElse(0);
    double local = Double.NaN;
    if (compareLocal) {
      int threads = p * ctx.config().taskThreads();
      out.printf("local: the same attention%s in one kernel call with %d threads%n",
          backward ? " backward" : "", threads);
      local = backward ? localBackwardRun((int) tokens, heads, headDim, causal, reps, threads)
          : localRun((int) tokens, heads, headDim, causal, reps, threads);
    }
    return new Result(spec.toString(), p, tokens, heads, headDim, causal, ring, local, results,
        backward);
  }

  private static Iterator<RankResult> rankRun(TaskEnv env, StrategySpec spec, ShardLayout layout,
      int heads, int headDim, boolean causal, int reps, boolean backward) {
    Random rnd = new Random(env.rank());
    int rows = layout.size(env.rank());
    Tensor q = Tensor.randn(rnd, 1f, rows, heads, headDim);
    Tensor k = Tensor.randn(rnd, 1f, rows, heads, headDim);
    Tensor v = Tensor.randn(rnd, 1f, rows, heads, headDim);
    Tensor o = Tensor.zeros(rows, heads, headDim);
    AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
    float scale = (float) (1 / Math.sqrt(headDim));
    double[] times = new double[reps];
    long bytes0;
    try (CpuFlashAttention kernel = new CpuFlashAttention(env.config().taskThreads());
        Strategy ring = Backends.distributed(spec, env.comm(), layout, kernel, env.size())) {
      kernel.cancelWith(dev.mosaic.spark.gpu.Devices.taskCancellation()); // stops once killed
      float[] lse = new float[rows * heads];
      ring.attend(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask, BlockView.of(o),
          lse);
      Tensor[] grads = backward ? new Tensor[] {Tensor.zeros(q.shape()), Tensor.zeros(q.shape()),
          Tensor.zeros(q.shape())} : null;
      Runnable call = backward
          ? () -> ring.attendBackward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
              BlockView.of(o), lse, BlockView.of(v), scale, mask, BlockView.of(grads[0]),
              BlockView.of(grads[1]), BlockView.of(grads[2])) // v stands in for dO
          : () -> ring.attend(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
              BlockView.of(o));
      if (backward) {
        call.run(); // warm-up: the forward above warmed only the forward kernel
      }
      bytes0 = env.comm().bytesSent();
      for (int i = 0; i < reps; i++) {
        env.comm().barrier();
        long t0 = System.nanoTime();
        call.run();
        times[i] = (System.nanoTime() - t0) / 1e9;
      }
    }
    long perRun = (env.comm().bytesSent() - bytes0) / Math.max(1, reps);
    Arrays.sort(times);
    return List.of(new RankResult(env.rank(), times[reps / 2], perRun,
        !spec.backend().equals(Backends.RING) ? -1
            : backward ? RingStrategy.backwardWorkingSetBytes(layout, env.rank(), 1, heads, headDim)
            : RingStrategy.workingSetBytes(layout, env.rank(), 1, heads, headDim),
        dev.mosaic.spark.runner.TaskMemory.jvmHeapPeak())).iterator();
  }

  static double localRun(int n, int heads, int headDim, boolean causal, int reps, int threads) {
    Random rnd = new Random(7);
    Tensor q = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor k = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor v = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor o = Tensor.zeros(n, heads, headDim);
    float[] lse = new float[n * heads];
    AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
    float scale = (float) (1 / Math.sqrt(headDim));
    double[] times = new double[reps];
    try (CpuFlashAttention kernel = new CpuFlashAttention(threads)) {
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(o), lse);
      for (int i = 0; i < reps; i++) {
        long t0 = System.nanoTime();
        kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
            BlockView.of(o), lse);
        times[i] = (System.nanoTime() - t0) / 1e9;
      }
    }
    Arrays.sort(times);
    return times[reps / 2];
  }

  /** The local side of a backward run: the whole sequence's backward with all the threads. */
  static double localBackwardRun(int n, int heads, int headDim, boolean causal, int reps,
      int threads) {
    Random rnd = new Random(7);
    Tensor q = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor k = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor v = Tensor.randn(rnd, 1f, n, heads, headDim);
    Tensor o = Tensor.zeros(n, heads, headDim);
    Tensor[] grads = {Tensor.zeros(q.shape()), Tensor.zeros(q.shape()), Tensor.zeros(q.shape())};
    float[] lse = new float[n * heads];
    AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
    float scale = (float) (1 / Math.sqrt(headDim));
    double[] times = new double[reps];
    try (CpuFlashAttention kernel = new CpuFlashAttention(threads);
        CpuFlashAttentionBackward backward = new CpuFlashAttentionBackward(threads)) {
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(o), lse);
      for (int i = -1; i < reps; i++) { // run -1 warms up
        long t0 = System.nanoTime();
        backward.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v), BlockView.of(o), lse,
            BlockView.of(v), scale, mask, BlockView.of(grads[0]), BlockView.of(grads[1]),
            BlockView.of(grads[2]), false);
        if (i >= 0) {
          times[i] = (System.nanoTime() - t0) / 1e9;
        }
      }
    }
    Arrays.sort(times);
    return times[reps / 2];
  }

  /** The table header for {@link #printRow}. */
  public static void printHeader(PrintStream out) {
    out.println();
    out.println("| strategy | tokens | heads x dim | causal | tasks | time | GFLOP/s | local time |"
        + " efficiency | sent per rank per call | buffers per task |");
    out.println("|---|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|");
  }

  public static void print(Result r, PrintStream out) {
    printHeader(out);
    printRow(r, out);
    long naive = 4L * r.tokens() * r.tokens() * r.heads();
    out.printf("naive score matrix for this size: %s; executor JVM heap peak (all tasks): %s;"
        + " JVM max heap %s%n", gib(naive),
        mib(r.ranks().stream().mapToLong(RankResult::heapPeakBytes).max().orElse(0)),
        mib(Runtime.getRuntime().maxMemory()));
  }

  public static void printRow(Result r, PrintStream out) {
    double flops = r.flops();
    long sent = r.ranks().stream().mapToLong(RankResult::bytesSentPerRun).max().orElse(0);
    long ws = r.ranks().stream().mapToLong(RankResult::workingSetBytes).max().orElse(0);
    out.printf("| %s | %d | %d x %d | %s | %d | %.3f s | %.1f | %s | %s | %s | %s |%n",
        r.strategy() + (r.backward() ? " backward" : ""), r.tokens(), r.heads(), r.headDim(), r.causal() ? "yes" : "no", r.sp(),
        r.ringSeconds(),
        flops / r.ringSeconds() / 1e9,
        Double.isNaN(r.localSeconds()) ? "-" : String.format("%.3f s", r.localSeconds()),
        Double.isNaN(r.localSeconds()) ? "-" : String.format("%.0f%%", 100 * r.efficiency()),
        mib(sent), ws < 0 ? "-" : mib(ws));
  }

  static String mib(long b) {
    return String.format("%.1f MiB", b / (1024.0 * 1024));
  }

  static String gib(long b) {
    return String.format("%.1f GB", b / 1e9);
  }
}
