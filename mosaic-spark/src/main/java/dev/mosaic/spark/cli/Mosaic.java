package dev.mosaic.spark.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.bridge.SLF4JBridgeHandler;

/**
 * The {@code mosaic} command line: dispatches sub-commands, answers {@code help} and
 * {@code --help}, and turns every failure into one line and an exit code ({@link FailureReport}).
 */
public final class Mosaic {
  static final String OVERVIEW = String.join("\n",
      "usage: mosaic [--verbose] <command> [flags]",
      "commands:",
      "  demo        run the main job: a tabular attention model on a synthetic table",
      "  attention   apply MultiAxisAttention to a tensor in a safetensors file",
      "  attention-table  attention over every sequence of a Parquet table (any lengths)",
      "  predict     run a nanoTabPFN checkpoint on a table (safetensors, Parquet or CSV)",
      "  bench       benchmarks (bench kernel, ring, strategies, predict, soak)",
      "  plan        memory and traffic per device for each strategy, and a recommendation",
      "  doctor      what this machine offers Mosaic (Java, SIMD, Spark, CUDA, NCCL, GPUs, kernels)",
      "  pretrain    train a nanoTabPFN model on the prior, data parallel over Spark tasks",
      "  selftest    check the kernels: CPU grouped-query attention; GPU kernels and NCCL ring",
      "  help        this text; 'mosaic help <command>' or 'mosaic <command> --help' for its flags",
      "Errors are one line on stderr; exit code 2 for bad usage or input, 1 for a failed run.",
      "--verbose (anywhere in the arguments) also prints the stack trace of an error.");
  /** Each command's usage, in the order 'mosaic help' lists them. */
  private static final Map<String, String> USAGES = usages();
  static final String USAGE = OVERVIEW + "\n\n" + String.join("\n\n", USAGES.values());

  private Mosaic() {}

  public static void main(String[] args) {
    routeJavaLoggingToLog4j();
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs one command; returns the exit code: 0 done, 2 bad usage or input, 1 the run failed
   * (and whatever a command returns itself, such as selftest's 3). Errors are one line on
   * {@code err}; {@code --verbose} anywhere in {@code args} adds the stack trace.
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    boolean verbose = false;
    List<String> rest = new ArrayList<>();
    for (String a : args) {
      if (a.equals("--verbose") || a.equalsIgnoreCase("--verbose=true")) {
        verbose = true;
      } else if (!a.equalsIgnoreCase("--verbose=false")) {
        rest.add(a);
      }
    }
    if (rest.isEmpty()) {
      err.println(OVERVIEW);
      return FailureReport.USAGE;
    }
    String cmd = rest.get(0);
    String[] flags = rest.subList(1, rest.size()).toArray(new String[0]);
    try {
      if (cmd.equals("help") || cmd.equals("--help") || cmd.equals("-h")) {
        return help(flags, out);
      }
      String usage = usage(cmd);
      if (wantsHelp(flags)) {
        out.println(usage);
        return 0;
      }
      return switch (cmd) {
        case "attention" -> AttentionCommand.run(flags, out);
        case "attention-table" -> AttentionTableCommand.run(flags, out);
        case "bench" -> BenchCommand.run(flags, out);
        case "demo" -> DemoCommand.run(flags, out);
        case "pretrain" -> PretrainCommand.run(flags, out);
        case "predict" -> PredictCommand.run(flags, out);
        case "plan" -> PlanCommand.run(flags, out);
        case "doctor" -> DoctorCommand.run(flags, out);
        case "selftest" -> SelftestCommand.run(flags, out);
        default -> throw new IllegalStateException("no runner for command '" + cmd + "'");
      };
    } catch (Throwable t) { // every failure becomes one line and an exit code
      return FailureReport.report(USAGES.containsKey(cmd) ? cmd : "", t, verbose, err);
    }
  }

  /** {@code mosaic help [command]}: everything, or one command's usage. */
  private static int help(String[] args, PrintStream out) {
    if (args.length == 0) {
      out.println(USAGE);
    } else if (args.length == 1) {
      out.println(usage(args[0]));
    } else {
      throw new UserError("'help' takes at most one command, got " + args.length + " arguments");
    }
    return 0;
  }

  /** The usage of a known command, else a usage error with the closest command name. */
  private static String usage(String cmd) {
    String usage = USAGES.get(cmd);
    if (usage == null) {
      throw new UserError("unknown command '" + cmd + "'"
          + DidYouMean.closest(cmd, USAGES.keySet()).map(c -> "; did you mean '" + c + "'?")
              .orElse("") + "; see 'mosaic help'");
    }
    return usage;
  }

  /** {@code --help} or {@code -h} anywhere after the command (also after a bench target). */
  private static boolean wantsHelp(String[] args) {
    for (String a : args) {
      if (a.equals("--help") || a.equals("-h")) {
        return true;
      }
    }
    return false;
  }

  private static Map<String, String> usages() {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("attention", AttentionCommand.USAGE);
    m.put("attention-table", AttentionTableCommand.USAGE);
    m.put("predict", PredictCommand.USAGE);
    m.put("bench", BenchCommand.USAGE);
    m.put("plan", PlanCommand.USAGE);
    m.put("doctor", DoctorCommand.USAGE);
    m.put("selftest", SelftestCommand.USAGE);
    m.put("demo", DemoCommand.USAGE);
    m.put("pretrain", PretrainCommand.USAGE);
    return Collections.unmodifiableMap(m);
  }

  /**
   * Sends java.util.logging (where the kernels' System.Logger goes) through log4j2 from the
   * start, so that its lines look like the others and follow conf/log4j2.properties; Spark does
   * the same, but only once a SparkContext starts.
   */
  private static void routeJavaLoggingToLog4j() {
    if (!SLF4JBridgeHandler.isInstalled()) {
      SLF4JBridgeHandler.removeHandlersForRootLogger();
      SLF4JBridgeHandler.install();
    }
  }
}
