package dev.mosaic.spark.cli;

import dev.mosaic.kernels.bench.KernelBenchmark;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Set;

/** {@code mosaic bench kernel}: benchmarks that print tables for docs/performance.md. */
final class BenchCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic bench kernel [--threads N] [--lengths 1024,4096,16384,65536]",
      "                           [--heads 8] [--head-dim 64]",
      "  Times the CPU flash kernel (fp32, causal and not) next to the machine's FMA peak.");

  private BenchCommand() {}

  static int run(String[] args, PrintStream out) {
    if (args.length == 0) {
      throw new UserError("'bench' needs a target: kernel\n" + USAGE);
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
    throw new UserError("unknown benchmark '" + target + "'; expected: kernel");
  }
}
