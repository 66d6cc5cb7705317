package dev.mosaic.spark.cli;

import dev.mosaic.spark.charts.Charts;
import dev.mosaic.spark.plan.Planner;
import java.io.IOException;
import java.nio.file.Path;
import java.io.PrintStream;
import java.util.Set;
import org.apache.spark.network.util.JavaUtils;

/** {@code mosaic plan}: memory and traffic per device for every strategy that fits. */
final class PlanCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic plan --seq N --heads H --head-dim D --gpus P [--gpu-memory 80g] [--nodes K]",
      "                   [--num-kv-heads G] [--causal] [--plot FILE.png]",
      "  For one attention layer (fp32, batch 1): each strategy and mesh shape that fits P",
      "  devices, the memory per device and the bytes each device sends, and a recommendation.",
      "  --plot FILE.png also draws memory and bytes sent per strategy as a bar chart.",
      "  --num-kv-heads G (dividing H): grouped-query attention, k and v of G heads (memory and",
      "  ring traffic shrink); mesh2d and composed, which do not run it, are left out.",
      "usage: mosaic plan --lengths N,N,...|FILE --heads H --head-dim D --gpus P",
      "                   [--num-kv-heads G] [--gpu-memory 80g] [--slots S] [--features F]",
      "                   [--causal]",
      "  For a table of sequence lengths (a comma list, or a file of lengths separated by commas,",
      "  spaces or new lines; '#' starts a comment): which sequences run whole in ordinary",
      "  tasks (packed over S tasks, default P, balanced by cost n^2*h*d) and which are sharded",
      "  over barrier stages of up to P tasks, with --gpu-memory per task (DataFrameAttention's",
      "  spark.mosaic.task.memory); memory and estimated cost per task.");

  private PlanCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("plan", args, Set.of("seq", "heads", "head-dim", "gpus", "gpu-memory",
        "nodes", "plot", "lengths", "slots", "features", "num-kv-heads"), Set.of("causal"));
    if (f.has("lengths")) {
      return RaggedPlanCommand.run(f, out);
    }
    long seq = f.longValue("seq", -1);
    if (seq < 1) {
      throw new UserError("'plan' needs --seq N (tokens, at least 1)");
    }
    String mem = f.string("gpu-memory", "80g");
    long memBytes = memory(f);
    int heads = f.requiredInt("heads");
    int kvHeads = kvHeads(f, heads);
    Planner.Problem pr = new Planner.Problem(seq, heads, kvHeads, f.requiredInt("head-dim"),
        f.requiredInt("gpus"), f.positive("nodes", 1), memBytes, f.has("causal"));
    out.printf("Plan: %d tokens, %d heads%s x %d, %s, %d devices in %d node(s), %s per device%n",
        pr.seq(), pr.heads(), kvHeads < heads ? " (" + kvHeads + " K/V)" : "", pr.headDim(),
        pr.causal() ? "causal" : "full", pr.devices(),
        pr.nodes(), mem);
    out.printf("(naive score matrix: %s per head)%n%n", size(4L * pr.seq() * pr.seq()));
    out.println("| strategy | memory/device | activations | buffers | workspace | sent/device/layer"
        + " | across nodes | fits | note |");
    out.println("|---|---:|---:|---:|---:|---:|---:|:---:|---|");
    for (Planner.Candidate c : Planner.candidates(pr)) {
      out.printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |%n", c.spec(), size(c.memory()),
          size(c.activations()), size(c.buffers()), size(c.workspace()), size(c.bytesSent()),
          size(c.interNodeBytes()), c.fits() ? "yes" : "no", c.note());
    }
    Planner.Candidate best = Planner.recommend(pr);
    out.printf("%nRecommended: %s — %s per device, sends %s per layer (%s across nodes).%n",
        best.spec(), size(best.memory()), size(best.bytesSent()), size(best.interNodeBytes()));
    if (f.has("plot")) {
      Path file = Path.of(f.string("plot", "plan.png"));
      try {
        Charts.write(Charts.plan(pr, Planner.candidates(pr)), file);
      } catch (IOException e) {
        throw new UserError("cannot write --plot " + file + ": " + e.getMessage());
      }
      out.println("Chart: " + file);
    }
    return 0;
  }

  /** --num-kv-heads G (default H): positive and dividing --heads H. */
  static int kvHeads(Flags f, int heads) {
    int g = f.positive("num-kv-heads", heads);
    if (heads < 1 || heads % g != 0) {
      throw new UserError("--num-kv-heads " + g + " must divide --heads " + heads
          + " (each K/V head serves H/G query heads)");
    }
    return g;
  }

  /** --gpu-memory in bytes (default 80g). */
  static long memory(Flags f) {
    String mem = f.string("gpu-memory", "80g");
    try {
      long b = JavaUtils.byteStringAsBytes(mem);
      if (b <= 0) {
        throw new NumberFormatException("not positive");
      }
      return b;
    } catch (NumberFormatException e) {
      throw new UserError("--gpu-memory expects a size such as 80g or 24g, got '" + mem + "'");
    }
  }

  static String size(long b) {
    if (b >= 1L << 30) {
      return String.format("%.2f GiB", b / (double) (1L << 30));
    }
    if (b >= 1L << 20) {
      return String.format("%.1f MiB", b / (double) (1L << 20));
    }
    return String.format("%.1f KiB", b / 1024.0);
  }
}
