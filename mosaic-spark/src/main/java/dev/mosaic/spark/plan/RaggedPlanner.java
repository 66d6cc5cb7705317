package dev.mosaic.spark.plan;

import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.StrategySpec;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Splits sequences of different lengths between ordinary tasks and barrier stages. A sequence
 * whose attention memory ({@link Planner}'s per-device formulas with one device) fits the task
 * memory runs whole in one ordinary task; those are packed into at most {@code slots} tasks,
 * longest-processing-time first by attention cost, so the heaviest task carries at most 4/3 of
 * the ideal share. A longer sequence is sharded over the fewest barrier tasks {@code p <=
 * maxShards} that the planner says fit, with the planner's strategy for that {@code p}; sequences
 * with the same strategy and {@code p} share one stage. Pure arithmetic: no Spark.
 *
 * <p>Under grouped-query attention ({@link Settings#kvHeads} G below H) memory counts k and v of
 * G heads (q and out of H) and the projection array {@code E + 2·G·d} floats per position; the
 * cost stays ∝ n²·H·d (every query head scores every visible key).
 */
public final class RaggedPlanner {

  /**
   * The layer and the cluster.
   *
   * @param batch floats per position are {@code batch × heads × headDim}: the number of features
   *     of a table row ({@code array<array<float>>}), 1 for a vector
   * @param keyLimit keys at positions {@code >= keyLimit} are hidden (cost counts only the rest)
   * @param maxShards most barrier tasks one sequence may be sharded over ({@code spSize})
   * @param slots most ordinary tasks the packed sequences are spread over
   * @param backend {@code ring} or {@code auto} (the planner's pick) for sharded sequences
   * @param kvHeads K/V heads (grouped-query attention), dividing {@code heads}
   */
  public record Settings(int heads, int headDim, int batch, boolean causal, long keyLimit,
      long taskMemoryBytes, int maxShards, int slots, String backend, int kvHeads)
      implements Serializable {
    public Settings {
      if (heads < 1 || headDim < 1 || batch < 1 || maxShards < 1 || slots < 1
          || taskMemoryBytes < 1) {
        throw new IllegalArgumentException("heads, headDim, batch, maxShards, slots and"
            + " taskMemoryBytes must be positive, got " + heads + ", " + headDim + ", " + batch
            + ", " + maxShards + ", " + slots + ", " + taskMemoryBytes);
      }
      if (!Backends.RING.equals(backend) && !Backends.AUTO.equals(backend)) {
        throw new IllegalArgumentException("backend must be '" + Backends.RING + "' or '"
            + Backends.AUTO + "' for sharded sequences, got '" + backend + "'");
      }
      if (kvHeads < 1 || heads % kvHeads != 0) {
        throw new IllegalArgumentException("kvHeads " + kvHeads + " must be positive and divide"
            + " heads " + heads + " (each K/V head serves heads/kvHeads query heads)");
      }
    }

    /** Multi-head attention: as many K/V heads as heads. */
    public Settings(int heads, int headDim, int batch, boolean causal, long keyLimit,
        long taskMemoryBytes, int maxShards, int slots, String backend) {
      this(heads, headDim, batch, causal, keyLimit, taskMemoryBytes, maxShards, slots, backend,
          heads);
    }

    int embed() {
      return heads * headDim;
    }

    /** Floats of one position's q/k/v projection: {@code E + 2·G·d} (3E without GQA). */
    long projected() {
      return (long) (heads + 2 * kvHeads) * headDim;
    }

    Planner.Problem problem(long n, int devices, long memory) {
      return new Planner.Problem(n, heads, kvHeads, headDim, devices, 1, memory, causal);
    }
  }

  /** Largest q/k/v projection one task may hold: a Java float array. */
  static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

  private RaggedPlanner() {}

  /**
   * Estimated forward FLOPs of one sequence: QKᵀ and PV, 2 flops per multiply-add each, over the
   * visible keys (half of them when causal); ∝ n²·h·d.
   */
  public static double cost(long n, Settings s) {
    double keys = Math.min(n, s.keyLimit());
    return 4.0 * n * keys * s.heads() * s.headDim() * s.batch() * (s.causal() ? 0.5 : 1.0);
  }

  /** Attention memory of one whole sequence in one task (the planner's single-device figure). */
  public static long wholeMemory(long n, Settings s) {
    Planner.Candidate local = Planner.candidates(s.problem(n, 1, Long.MAX_VALUE)).get(0);
    return local.activations() * s.batch() + local.buffers() * s.batch() + local.workspace();
  }

  public static RaggedPlan plan(long[] lengths, Settings s) {
    int count = lengths.length;
    int[] packedTask = new int[count];
    int[] stageOf = new int[count];
    Arrays.fill(packedTask, -1);
    Arrays.fill(stageOf, -1);
    List<Integer> packed = new ArrayList<>();
    boolean[] packedOver = new boolean[count];
    Map<String, List<Integer>> groups = new LinkedHashMap<>();
    Map<String, Sharding> groupSharding = new LinkedHashMap<>();
    for (int i = 0; i < count; i++) {
      long n = lengths[i];
      if (n < 1) {
        throw new IllegalArgumentException("sequence " + i + " has length " + n
            + ", expected at least 1");
      }
      if (fitsWhole(n, s)) {
        packed.add(i);
        continue;
      }
      Sharding sh = shard(n, s);
      if (sh == null) { // too short to cut, or one task only: it runs whole anyway
        if (n * s.batch() * s.projected() > MAX_ARRAY) {
          throw new IllegalArgumentException("a sequence of " + n + " positions"
              + (s.batch() > 1 ? " x " + s.batch() + " features" : "") + " x embed " + s.embed()
              + " cannot be sharded over " + s.maxShards() + " task(s) and does not fit one"
              + " task's arrays: use more shards (spSize)");
        }
        packed.add(i);
        packedOver[i] = true;
        continue;
      }
      String id = sh.strategy() + "/" + sh.tasks() + (sh.overMemory() ? "/over" : "");
      groups.computeIfAbsent(id, k -> new ArrayList<>()).add(i);
      groupSharding.put(id, sh);
    }
    List<RaggedPlan.PackedTask> tasks = pack(packed, lengths, s, packedTask, packedOver);
    List<RaggedPlan.Stage> stages = new ArrayList<>();
    List<String> ids = new ArrayList<>(groups.keySet());
    ids.sort(Comparator.comparingInt((String id) -> groupSharding.get(id).tasks())
        .thenComparing(id -> id));
    for (String id : ids) {
      Sharding sh = groupSharding.get(id);
      List<Integer> seqs = groups.get(id);
      long mem = 0;
      double cost = 0;
      for (int i : seqs) {
        stageOf[i] = stages.size();
        mem = Math.max(mem, shardMemory(lengths[i], sh.tasks(), sh.strategy(), s));
        cost += cost(lengths[i], s) / sh.tasks();
      }
      stages.add(new RaggedPlan.Stage(stages.size(), sh.strategy(), sh.tasks(),
          seqs.stream().mapToInt(Integer::intValue).toArray(), mem, cost, sh.overMemory()));
    }
    return new RaggedPlan(s, lengths.clone(), packedTask, stageOf, tasks, stages);
  }

  private static boolean fitsWhole(long n, Settings s) {
    return wholeMemory(n, s) <= s.taskMemoryBytes()
        && n * s.batch() * s.projected() <= MAX_ARRAY;
  }

  /** How one long sequence is sharded. */
  private record Sharding(StrategySpec strategy, int tasks, boolean overMemory) {}

  /**
   * The fewest tasks (2..maxShards, every shard non-empty) that fit, with the planner's strategy;
   * when none fits, the most tasks allowed (flagged over memory); null when it cannot be cut.
   */
  private static Sharding shard(long n, Settings s) {
    int most = 1;
    for (int p = 2; p <= s.maxShards() && nonEmptyShards(n, p, s.causal()); p++) {
      most = p;
      Planner.Candidate c = candidate(n, p, s, s.taskMemoryBytes() / s.batch());
      if (c != null && c.fits() && layout(n, p, s.causal()).maxSize() * s.batch()
          * s.projected() <= MAX_ARRAY) {
        return new Sharding(c.spec(), p, false);
      }
    }
    if (most < 2) {
      return null;
    }
    if (layout(n, most, s.causal()).maxSize() * s.batch() * s.projected() > MAX_ARRAY) {
      throw new IllegalArgumentException("a shard of a sequence of " + n + " positions over "
          + most + " tasks" + (s.batch() > 1 ? " x " + s.batch() + " features" : "")
          + " x embed " + s.embed() + " would hold more than 2^31 - 8 floats of q/k/v: use more"
          + " shards (spSize)");
    }
    Planner.Candidate c = candidate(n, most, s, Long.MAX_VALUE);
    return new Sharding(c.spec(), most, true);
  }

  /** The ring candidate, or the planner's recommendation for {@code auto}; null if none fits. */
  private static Planner.Candidate candidate(long n, int p, Settings s, long memory) {
    Planner.Problem pr = s.problem(n, p, memory);
    if (Backends.RING.equals(s.backend())) {
      return Planner.candidates(pr).stream()
          .filter(c -> Backends.RING.equals(c.spec().backend())).findFirst().orElse(null);
    }
    List<Planner.Candidate> all = Planner.candidates(pr);
    if (all.stream().noneMatch(Planner.Candidate::fits)) {
      return null;
    }
    return Planner.recommend(pr);
  }

  static long shardMemory(long n, int p, StrategySpec strategy, Settings s) {
    Planner.Problem pr = s.problem(n, p, Long.MAX_VALUE);
    for (Planner.Candidate c : Planner.candidates(pr)) {
      if (c.spec().equals(strategy)) {
        return (c.activations() + c.buffers()) * s.batch() + c.workspace();
      }
    }
    throw new IllegalStateException("no candidate " + strategy + " for " + n + " over " + p);
  }

  private static ShardLayout layout(long n, int p, boolean causal) {
    return causal && p > 1 ? ShardLayout.zigzag(n, p) : ShardLayout.contiguous(n, p);
  }

  /** True when every one of the {@code p} shards of {@code n} positions gets one. */
  public static boolean nonEmptyShards(long n, int p, boolean causal) {
    ShardLayout l = layout(n, p, causal);
    for (int r = 0; r < p; r++) {
      if (l.size(r) == 0) {
        return false;
      }
    }
    return true;
  }

  /**
   * Longest processing time first: the costliest sequence goes to the least loaded task. Ties go
   * to the lower index, so the plan is the same on every run.
   */
  private static List<RaggedPlan.PackedTask> pack(List<Integer> packed, long[] lengths,
      Settings s, int[] packedTask, boolean[] over) {
    int t = Math.min(packed.size(), s.slots());
    List<Integer> order = new ArrayList<>(packed);
    order.sort(Comparator.comparingDouble((Integer i) -> -cost(lengths[i], s))
        .thenComparingInt(i -> i));
    double[] load = new double[t];
    PriorityQueue<Integer> least = new PriorityQueue<>(Comparator
        .comparingDouble((Integer k) -> load[k]).thenComparingInt(k -> k));
    for (int k = 0; k < t; k++) {
      least.add(k);
    }
    List<List<Integer>> members = new ArrayList<>();
    for (int k = 0; k < t; k++) {
      members.add(new ArrayList<>());
    }
    for (int i : order) {
      int k = least.poll();
      load[k] += cost(lengths[i], s);
      members.get(k).add(i);
      packedTask[i] = k;
      least.add(k);
    }
    List<RaggedPlan.PackedTask> tasks = new ArrayList<>();
    for (int k = 0; k < t; k++) {
      int[] seqs = members.get(k).stream().mapToInt(Integer::intValue).sorted().toArray();
      long peak = 0;
      boolean anyOver = false;
      for (int i : seqs) {
        peak = Math.max(peak, wholeMemory(lengths[i], s));
        anyOver |= over[i];
      }
      tasks.add(new RaggedPlan.PackedTask(k, seqs, load[k], peak, anyOver));
    }
    return tasks;
  }
}
