package dev.mosaic.spark.cli;

import dev.mosaic.kernels.bench.BackwardBenchmark;
import dev.mosaic.kernels.bench.KernelBenchmark;
import dev.mosaic.kernels.bench.KernelComparison;
import dev.mosaic.kernels.bench.PeerLoader;
import dev.mosaic.kernels.gpu.GpuKernelBenchmark;
import dev.mosaic.spark.bench.RaggedBenchmark;
import dev.mosaic.spark.bench.SoakBenchmark;
import dev.mosaic.spark.bench.StrategyBenchmark;
import dev.mosaic.spark.charts.Charts;
import java.io.IOException;
import java.nio.file.Path;
import org.jfree.chart.JFreeChart;
import dev.mosaic.spark.plan.Planner;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.StrategySpec;
import java.util.ArrayList;
import java.util.List;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.runner.StageProgress;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/** {@code mosaic bench kernel}: benchmarks that print tables for docs/performance.md. */
final class BenchCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic bench kernel [--threads N] [--lengths 1024,4096,16384,65536]",
      "                           [--heads 8] [--head-dim 64] [--plot FILE.png] [--backward]",
      "  Times the CPU flash kernel (fp32, causal and not) next to the machine's FMA peak.",
      "  --backward times the attention backward next to the forward (default lengths up to",
      "  16384; backward FLOPs = 2.5 x forward).",
      "usage: mosaic bench kernel --device gpu [--lengths 1024,4096,16384] [--heads 8]",
      "                           [--head-dim 64]",
      "  The CUDA kernels on GPU 0 in fp32, fp16 and bf16 (tensor cores for fp16/bf16), kernel",
      "  time from CUDA events, next to the roofline estimate of docs/gpu.md. Without a GPU it",
      "  says so, prints only the estimates, and exits 3.",
      "usage: mosaic bench kernel --vs-pytorch [--threads N] [--lengths 1024,4096]",
      "                           [--heads 8] [--head-dims 16,32,64,128]",
      "  The same, alternating with PyTorch's fused SDPA on the same inputs (mosaic-bench module:",
      "  bin/mosaic builds it on first use with mvn -B -q -Pbench -pl mosaic-bench -am package).",
      "usage: mosaic bench ring [--sp 2] [--tokens 16384] [--heads 8] [--head-dim 64] [--causal]",
      "                         [--reps 3] [--master URL] [--threads N] [--no-local]",
      "                         [--plot FILE.png] [--backward]",
      "  Ring attention over --sp Spark barrier tasks against the local kernel on the same cores.",
      "  --backward times the ring backward against the local backward kernel instead.",
      "usage: mosaic bench strategies [--sp 4] [--tokens 8192] [--heads 8] [--head-dim 64]",
      "                               [--causal] [--reps 3] [--master URL] [--threads N]",
      "                               [--plot FILE.png]",
      "  Every strategy the planner lists for --sp tasks, on the same problem, side by side.",
      "  --plot FILE.png draws the results as a chart (PNG). Default master: local[max(cores, sp)].",
      "usage: mosaic bench soak [--jobs 200] [--every 50] [--sp 4] [--master URL]",
      "  Consecutive jobs of every strategy (some failing on purpose) in one session; threads,",
      "  file descriptors, direct memory and heap after GC must stay flat (exit 1 if they grew).",
      IoBenchCommand.USAGE,
      "usage: mosaic bench predict [--train 20000] [--test 100000] [--batch 1000] [--features 10]",
      "                            [--embed 32] [--heads 2] [--layers 2] [--threads N] [--calls 3]",
      "                            [--model FILE.safetensors]",
      "  nanoTabPFN scoring of test rows in batches (calls): against train rows cached once, and",
      "  recomputing the train rows every call (only the first --calls batches: it is slow).",
      "  Prints rows/s of both and the ratio; exit 1 if their logits differ by more than 1e-4.",
      "  Seeded weights unless --model (then --embed/--heads/--layers come from the file).",
      "usage: mosaic bench ragged [--sequences 500] [--min-len 16] [--max-len 1024] [--heads 2]",
      "                           [--head-dim 16] [--causal] [--sample 8] [--repeats 3]",
      "                           [--master URL] [--threads N]",
      "  A table of sequences with log-uniform lengths through DataFrameAttention: the packed",
      "  plan (one varlen kernel call per ordinary task) against every sequence padded to the",
      "  longest (measured in full) and one barrier stage per sequence (estimated from --sample",
      "  sequences: each pays a barrier stage's seconds of fixed cost). Packed and padded",
      "  alternate for --repeats rounds; the medians count. Defaults take ~10 minutes on 2 cores.",
      TrainStepBenchmark.USAGE);

  private BenchCommand() {}

  static int run(String[] args, PrintStream out) {
    if (args.length == 0) {
      throw new UserError("'bench' needs a target: kernel, ring, strategies, soak, io,"
          + " predict, train-step or ragged");
    }
    String target = args[0];
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    if (target.equals("kernel")) {
      Flags f = Flags.parse("bench kernel", rest, Set.of("threads", "lengths", "heads", "head-dim",
          "head-dims", "plot", "device"), Set.of("vs-pytorch", "backward"));
      String device = f.string("device", "cpu");
      if (device.equals("gpu")) {
        if (f.has("vs-pytorch") || f.has("backward") || f.has("plot") || f.has("threads")
            || f.has("head-dims")) {
          throw new UserError("bench kernel --device gpu takes only --lengths, --heads and"
              + " --head-dim");
        }
        return GpuKernelBenchmark.report(out, f.intList("lengths",
            new int[] {1024, 4096, 16384}), f.positive("heads", 8), f.positive("head-dim", 64));
      }
      if (!device.equals("cpu")) {
        throw new UserError("--device must be cpu or gpu, got '" + device + "'");
      }
      if (f.has("vs-pytorch")) {
        if (f.has("backward") || f.has("plot")) {
          throw new UserError("bench kernel --vs-pytorch takes neither --backward nor --plot");
        }
        return vsPyTorch(f, out);
      }
      if (f.has("head-dims")) {
        throw new UserError("--head-dims goes with --vs-pytorch; without it use --head-dim N");
      }
      if (f.has("backward")) {
        if (f.has("plot")) {
          throw new UserError("bench kernel --backward draws no chart; drop --plot");
        }
        BackwardBenchmark.report(out, f.positive("threads", 2),
            f.intList("lengths", new int[] {1024, 4096, 16384}), f.positive("heads", 8),
            f.positive("head-dim", 64));
        return 0;
      }
      List<KernelBenchmark.Row> rows = KernelBenchmark.report(out, f.positive("threads", 2),
          f.intList("lengths", new int[] {1024, 4096, 16384, 65536}), f.positive("heads", 8),
          f.positive("head-dim", 64));
      plot(f, Charts.kernel(rows), out);
      return 0;
    }
    if (target.equals("ring") || target.equals("strategies")) {
      boolean all = target.equals("strategies");
      Flags f = Flags.parse("bench " + target, rest, Set.of("sp", "tokens", "heads", "head-dim",
          "reps", "master", "threads", "plot"), all ? Set.of("causal")
          : Set.of("causal", "no-local", "backward"));
      int sp = f.positive("sp", all ? 4 : 2);
      int tokens = f.positive("tokens", all ? 8192 : 16384);
      int heads = f.positive("heads", 8);
      int headDim = f.positive("head-dim", 64);
      boolean causal = f.has("causal");
      int reps = f.positive("reps", 3);
      Map<String, String> conf = new HashMap<>();
      if (f.has("threads")) {
        conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
      }
      SparkSession spark = SparkSessions.getOrCreate(f.string("master",
          SparkSessions.defaultMaster(sp)),
          "mosaic-bench-" + target, conf);
      try {
        MosaicContext ctx = MosaicContext.init(spark, sp);
        spark.sparkContext().addSparkListener(new StageProgress(out));
        spark.sparkContext().setJobGroup("mosaic-bench", "Mosaic " + target + " benchmark",
            false);
        if (!all) {
          StrategyBenchmark.Result r = StrategyBenchmark.run(ctx, StrategySpec.of(Backends.RING),
              tokens, heads, headDim, causal, reps, !f.has("no-local"), f.has("backward"), out);
          StrategyBenchmark.print(r, out);
          plot(f, Charts.strategies(List.of(r)), out);
          return 0;
        }
        double local = Double.NaN;
        List<StrategyBenchmark.Result> results = new ArrayList<>();
        for (Planner.Candidate c : Planner.candidates(new Planner.Problem(tokens, heads, headDim,
            sp, 1, Long.MAX_VALUE, causal))) {
          StrategyBenchmark.Result r = StrategyBenchmark.run(ctx, c.spec(), tokens, heads,
              headDim, causal, reps, Double.isNaN(local), out);
          local = Double.isNaN(local) ? r.localSeconds() : local;
          results.add(new StrategyBenchmark.Result(r.strategy(), r.sp(), r.tokens(), r.heads(),
              r.headDim(), r.causal(), r.ringSeconds(), local, r.ranks()));
        }
        StrategyBenchmark.printHeader(out);
        results.forEach(r -> StrategyBenchmark.printRow(r, out));
        plot(f, Charts.strategies(results), out);
      } finally {
        spark.stop();
      }
      return 0;
    }
    if (target.equals("io")) {
      return IoBenchCommand.run(rest, out);
    }
    if (target.equals("soak")) {
      Flags f = Flags.parse("bench soak", rest, Set.of("jobs", "every", "sp", "master"), Set.of());
      int sp = f.positive("sp", 4);
      return SoakBenchmark.run(f.string("master", SparkSessions.defaultMaster(sp)),
          f.positive("jobs", 200), f.positive("every", 50), sp, out);
    }
    if (target.equals("predict")) {
      return PredictBenchCommand.run(rest, out);
    }
    if (target.equals("train-step")) {
      return TrainStepBenchmark.run(rest, out);
    }
    if (target.equals("ragged")) {
      return ragged(rest, out);
    }
    throw new UserError("unknown benchmark '" + target + "'; expected: kernel, ring, strategies,"
        + " soak, io, predict, train-step, ragged");
  }

  /** {@code bench ragged}: packed plan vs padding vs one barrier stage per sequence. */
  private static int ragged(String[] rest, PrintStream out) {
    Flags f = Flags.parse("bench ragged", rest, Set.of("sequences", "min-len", "max-len",
        "heads", "head-dim", "sample", "repeats", "master", "threads"), Set.of("causal"));
    RaggedBenchmark.Settings s = new RaggedBenchmark.Settings(f.positive("sequences", 500),
        f.positive("min-len", 16), f.positive("max-len", 1024), f.positive("heads", 2),
        f.positive("head-dim", 16), f.has("causal"), f.positive("sample", 8), f.positive("repeats", 3), 14L);
    if (s.minLength() > s.maxLength()) {
      throw new UserError("--min-len " + s.minLength() + " is above --max-len " + s.maxLength());
    }
    Map<String, String> conf = new HashMap<>();
    if (f.has("threads")) {
      conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
    }
    SparkSession spark = SparkSessions.getOrCreate(f.string("master",
        SparkSessions.defaultMaster(2)), "mosaic-bench-ragged", conf);
    try {
      RaggedBenchmark.run(MosaicContext.init(spark, 2), s, out);
    } finally {
      spark.stop();
    }
    return 0;
  }

  /** {@code bench kernel --vs-pytorch}: ours and PyTorch's SDPA side by side (Mosaic alone if
   * the peer cannot load, with the reason). */
  private static int vsPyTorch(Flags f, PrintStream out) {
    int threads = f.positive("threads", 2);
    int[] headDims = f.intList("head-dims", new int[] {f.positive("head-dim", 64)});
    PeerLoader.Result loaded = PeerLoader.load(threads);
    try {
      KernelComparison.report(out, threads, headDims,
          f.intList("lengths", new int[] {1024, 4096}), f.positive("heads", 8), loaded.peer(),
          loaded.whyNot());
    } finally {
      if (loaded.peer() != null) {
        loaded.peer().close();
      }
    }
    return 0;
  }

  /** Writes the chart when --plot FILE.png was given. */
  private static void plot(Flags f, JFreeChart chart, PrintStream out) {
    if (!f.has("plot")) {
      return;
    }
    Path file = Path.of(f.string("plot", "bench.png"));
    try {
      Charts.write(chart, file);
    } catch (IOException e) {
      throw new UserError("cannot write --plot " + file + ": " + e.getMessage());
    }
    out.println("Chart: " + file);
  }
}
