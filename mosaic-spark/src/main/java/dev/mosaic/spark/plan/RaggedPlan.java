package dev.mosaic.spark.plan;

import dev.mosaic.spark.strategy.StrategySpec;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;

/**
 * Where each sequence of a ragged batch runs ({@link RaggedPlanner}): sequence {@code i} (by
 * index into {@code lengths}) runs whole in ordinary task {@code packedTask[i]}, or sharded in
 * barrier stage {@code stageOf[i]}; the other entry is -1.
 */
public record RaggedPlan(RaggedPlanner.Settings settings, long[] lengths, int[] packedTask,
    int[] stageOf, List<PackedTask> tasks, List<Stage> stages) implements Serializable {

  /**
   * One ordinary task: its sequences (ascending index), their summed cost (FLOPs), the memory of
   * its largest sequence (they run one after another); {@code overMemory} when a sequence in it
   * exceeds the task memory but cannot be sharded (too short to cut, or {@code maxShards} 1).
   */
  public record PackedTask(int index, int[] sequences, double cost, long peakMemory,
      boolean overMemory) implements Serializable {}

  /**
   * One barrier stage of {@code tasks} tasks: its sequences run one after another, each sharded
   * over all tasks with {@code strategy}. Memory per task of its largest sequence, cost per task
   * summed; {@code overMemory} when even {@code maxShards} tasks do not fit the task memory.
   */
  public record Stage(int index, StrategySpec strategy, int tasks, int[] sequences,
      long memoryPerTask, double costPerTask, boolean overMemory) implements Serializable {}

  public int packedCount() {
    int c = 0;
    for (PackedTask t : tasks) {
      c += t.sequences().length;
    }
    return c;
  }

  /** The heaviest ordinary task's cost; 0 without packed sequences. */
  public double heaviestTaskCost() {
    return tasks.stream().mapToDouble(PackedTask::cost).max().orElse(0);
  }

  /**
   * A lower bound on any packing's heaviest task: the average load or the costliest sequence,
   * whichever is larger. LPT stays within 4/3 of the optimum, so also of this bound.
   */
  public double packingLowerBound() {
    double total = 0;
    double largest = 0;
    for (PackedTask t : tasks) {
      total += t.cost();
      for (int i : t.sequences()) {
        largest = Math.max(largest, RaggedPlanner.cost(lengths[i], settings));
      }
    }
    return tasks.isEmpty() ? 0 : Math.max(total / tasks.size(), largest);
  }

  /** The plan for people: how many sequences go where, memory and estimated cost per task. */
  public String describe() {
    StringBuilder b = new StringBuilder();
    long tokens = 0;
    for (long n : lengths) {
      tokens += n;
    }
    RaggedPlanner.Settings s = settings;
    b.append(String.format(Locale.ROOT, "Ragged plan: %d sequences, %d tokens (lengths %s),"
        + " %d heads%s x %d%s%s, task memory %s, up to %d shards%n", lengths.length, tokens,
        range(lengths), s.heads(), s.kvHeads() < s.heads() ? " (" + s.kvHeads() + " K/V)" : "",
        s.headDim(), s.batch() > 1 ? " x " + s.batch() + " features"
        : "", s.causal() ? ", causal" : "", size(s.taskMemoryBytes()), s.maxShards()));
    if (tasks.isEmpty()) {
      b.append("  packed: none\n");
    } else {
      b.append(String.format(Locale.ROOT, "  packed: %s in %d ordinary tasks (no"
          + " barrier), heaviest task %s, ideal %s (%.2fx)%n", sequences(packedCount()),
          tasks.size(),
          flops(heaviestTaskCost()), flops(packingLowerBound()),
          packingLowerBound() == 0 ? 1.0 : heaviestTaskCost() / packingLowerBound()));
      for (PackedTask t : tasks) {
        b.append(String.format(Locale.ROOT, "    task %d: %s (%s), %s, peak %s%s%n",
            t.index(), sequences(t.sequences().length), range(select(t.sequences())),
            flops(t.cost()),
            size(t.peakMemory()), t.overMemory() ? "  ! over the task memory, cannot shard" : ""));
      }
    }
    if (stages.isEmpty()) {
      b.append("  sharded: none\n");
    } else {
      int count = 0;
      for (Stage st : stages) {
        count += st.sequences().length;
      }
      b.append(String.format(Locale.ROOT, "  sharded: %s in %d barrier stage(s)%n",
          sequences(count), stages.size()));
      for (Stage st : stages) {
        b.append(String.format(Locale.ROOT, "    stage %d: %s over %d tasks, %s (%s),"
            + " %s per task, %s per task%s%n", st.index(), st.strategy(), st.tasks(),
            sequences(st.sequences().length), range(select(st.sequences())),
            flops(st.costPerTask()),
            size(st.memoryPerTask()), st.overMemory() ? "  ! over the task memory even on "
            + st.tasks() + " tasks" : ""));
      }
    }
    return b.toString();
  }

  private static String sequences(int n) {
    return n + (n == 1 ? " sequence" : " sequences");
  }

  private long[] select(int[] idx) {
    long[] out = new long[idx.length];
    for (int i = 0; i < idx.length; i++) {
      out[i] = lengths[idx[i]];
    }
    return out;
  }

  private static String range(long[] ns) {
    if (ns.length == 0) {
      return "-";
    }
    long lo = Long.MAX_VALUE;
    long hi = 0;
    for (long n : ns) {
      lo = Math.min(lo, n);
      hi = Math.max(hi, n);
    }
    return lo == hi ? "n " + lo : "n " + lo + ".." + hi;
  }

  static String flops(double f) {
    if (f >= 1e12) {
      return String.format(Locale.ROOT, "%.2f TFLOP", f / 1e12);
    }
    if (f >= 1e9) {
      return String.format(Locale.ROOT, "%.2f GFLOP", f / 1e9);
    }
    return String.format(Locale.ROOT, "%.2f MFLOP", f / 1e6);
  }

  static String size(long b) {
    if (b >= 1L << 30) {
      return String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30));
    }
    if (b >= 1L << 20) {
      return String.format(Locale.ROOT, "%.1f MiB", b / (double) (1L << 20));
    }
    return b >= 1024 ? String.format(Locale.ROOT, "%.1f KiB", b / 1024.0) : b + " B";
  }
}
