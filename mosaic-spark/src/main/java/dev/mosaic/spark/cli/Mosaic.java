package dev.mosaic.spark.cli;

import dev.mosaic.kernels.io.SafetensorsException;
import java.io.PrintStream;
import java.util.Arrays;

/** The {@code mosaic} command line: dispatches sub-commands, turns user errors into one line. */
public final class Mosaic {
  static final String USAGE = String.join("\n",
      "usage: mosaic <command> [flags]",
      "commands:",
      "  demo        run the main job: a tabular attention model on a synthetic table",
      "  attention   apply MultiAxisAttention to a tensor in a safetensors file",
      "  bench       benchmarks (bench kernel, bench ring)",
      "  plan        memory and traffic per device for each strategy, and a recommendation",
      "  doctor      what this machine offers Mosaic (Java, SIMD, Spark, CUDA, NCCL, GPUs, kernels)",
      "  selftest    compare the GPU kernels (and an NCCL ring) with the CPU kernel",
      "  help        this text; 'mosaic help <command>' for a command's flags",
      "",
      AttentionCommand.USAGE,
      "",
      BenchCommand.USAGE,
      "",
      PlanCommand.USAGE,
      "",
      DoctorCommand.USAGE,
      "",
      SelftestCommand.USAGE,
      "",
      DemoCommand.USAGE);

  private Mosaic() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs one command; returns the exit code. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length == 0) {
      err.println(USAGE);
      return 2;
    }
    String cmd = args[0];
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    try {
      switch (cmd) {
        case "attention":
          return AttentionCommand.run(rest, out);
        case "bench":
          return BenchCommand.run(rest, out);
        case "demo":
          return DemoCommand.run(rest, out);
        case "plan":
          return PlanCommand.run(rest, out);
        case "doctor":
          return DoctorCommand.run(rest, out);
        case "selftest":
          return SelftestCommand.run(rest, out);
        case "help":
        case "--help":
        case "-h":
          out.println(USAGE);
          return 0;
        default:
          err.println("mosaic: unknown command '" + cmd + "'");
          err.println(USAGE);
          return 2;
      }
    } catch (UserError | IllegalArgumentException | SafetensorsException e) {
      err.println("mosaic " + cmd + ": error: " + e.getMessage());
      return 2;
    }
  }
}
