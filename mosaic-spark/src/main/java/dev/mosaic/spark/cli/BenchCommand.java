package dev.mosaic.spark.cli;

import dev.mosaic.kernels.bench.KernelBenchmark;
import dev.mosaic.spark.bench.RingBenchmark;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.SparkSessions;
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
      "                           [--heads 8] [--head-dim 64]",
      "  Times the CPU flash kernel (fp32, causal and not) next to the machine's FMA peak.",
      "usage: mosaic bench ring [--sp 2] [--tokens 16384] [--heads 8] [--head-dim 64] [--causal]",
      "                         [--reps 3] [--master local[*]] [--threads N] [--no-local]",
      "  Ring attention over --sp Spark barrier tasks against the local kernel on the same cores.");

  private BenchCommand() {}

  static int run(String[] args, PrintStream out) {
    if (args.length == 0) {
      throw new UserError("'bench' needs a target: kernel or ring");
    }
    String target = args[0];
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    if (target.equals("kernel")) {
      Flags f = Flags.parse("bench kernel", rest, Set.of("threads", "lengths", "heads", "head-dim"),
          Set.of());
      KernelBenchmark.report(out, f.positive("threads", 2),
          f.intList("lengths", new int[] {1024, 4096, 16384, 65536}), f.positive("heads", 8),
          f.positive("head-dim", 64));
      return 0;
    }
    if (target.equals("ring")) {
      Flags f = Flags.parse("bench ring", rest, Set.of("sp", "tokens", "heads", "head-dim", "reps",
          "master", "threads"), Set.of("causal", "no-local"));
      int sp = f.positive("sp", 2);
      Map<String, String> conf = new HashMap<>();
      if (f.has("threads")) {
        conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
      }
      SparkSession spark = SparkSessions.getOrCreate(f.string("master", "local[*]"),
          "mosaic-bench-ring", conf);
      try {
        MosaicContext ctx = MosaicContext.init(spark, sp);
        spark.sparkContext().setJobGroup("mosaic-bench", "Mosaic ring benchmark", false);
        RingBenchmark.Result r = RingBenchmark.run(ctx, f.positive("tokens", 16384),
            f.positive("heads", 8), f.positive("head-dim", 64), f.has("causal"),
            f.positive("reps", 3), !f.has("no-local"), out);
        RingBenchmark.print(r, out);
      } finally {
        spark.stop();
      }
      return 0;
    }
    throw new UserError("unknown benchmark '" + target + "'; expected: kernel, ring");
  }
}
