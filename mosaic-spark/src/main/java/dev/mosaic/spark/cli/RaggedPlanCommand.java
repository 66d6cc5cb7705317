package dev.mosaic.spark.cli;

import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.spark.strategy.Backends;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code mosaic plan --lengths ...}: where the sequences of a ragged table would run. */
final class RaggedPlanCommand {
  private RaggedPlanCommand() {}

  static int run(Flags f, PrintStream out) {
    if (f.has("seq") || f.has("nodes") || f.has("plot")) {
      throw new UserError("--lengths plans a table of sequences; --seq, --nodes and --plot"
          + " belong to the single-sequence plan");
    }
    long[] lengths = lengths(f.required("lengths"));
    int heads = f.requiredInt("heads");
    int headDim = f.requiredInt("head-dim");
    int gpus = f.positive("gpus", 1);
    if (heads < 1 || headDim < 1) {
      throw new UserError("--heads and --head-dim must be positive, got " + heads + " and "
          + headDim);
    }
    RaggedPlanner.Settings s = new RaggedPlanner.Settings(heads, headDim,
        f.positive("features", 1), f.has("causal"), Long.MAX_VALUE, PlanCommand.memory(f), gpus,
        f.positive("slots", gpus), Backends.AUTO, PlanCommand.kvHeads(f, heads));
    RaggedPlan plan = RaggedPlanner.plan(lengths, s);
    out.print(plan.describe());
    return 0;
  }

  /** A comma list of lengths, or a file of them (commas, spaces, new lines; '#' comments). */
  static long[] lengths(String arg) {
    String text = arg;
    String source = "--lengths";
    Path file = Path.of(arg);
    if (Files.isRegularFile(file) || !arg.matches(".*[,0-9].*")) {
      if (!Files.isRegularFile(file)) {
        throw new UserError("--lengths expects N,N,... or a file of lengths, got '" + arg
            + "' (no such file)");
      }
      try {
        text = Files.readString(file);
      } catch (IOException e) {
        throw new UserError("--lengths " + arg + ": cannot read: " + e.getMessage());
      }
      source = "--lengths " + arg;
    }
    List<Long> out = new ArrayList<>();
    for (String line : text.split("\n")) {
      int hash = line.indexOf('#');
      String body = hash >= 0 ? line.substring(0, hash) : line;
      for (String tok : body.split("[,\\s]+")) {
        if (tok.isEmpty()) {
          continue;
        }
        long n;
        try {
          n = Long.parseLong(tok);
        } catch (NumberFormatException e) {
          throw new UserError(source + ": '" + tok + "' is not a length (a whole number)");
        }
        if (n < 1) {
          throw new UserError(source + ": length " + n + " must be at least 1");
        }
        out.add(n);
      }
    }
    if (out.isEmpty()) {
      throw new UserError(source + " holds no lengths");
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }
}
