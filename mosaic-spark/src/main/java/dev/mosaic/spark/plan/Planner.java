package dev.mosaic.spark.plan;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ComposedStrategy;
import dev.mosaic.spark.strategy.HierarchicalRingStrategy;
import dev.mosaic.spark.strategy.Mesh2dStrategy;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.spark.strategy.UlyssesStrategy;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * For one attention layer of {@code seq} tokens, {@code heads × headDim}, on {@code devices}
 * devices in {@code nodes} nodes: every strategy and mesh shape that fits, with the memory each
 * device holds and the bytes each device sends, and a recommendation. The byte counts are the
 * strategies' own exact formulas ({@code bytesSent}), the ones the TCP communicator counts; fp32
 * (4 bytes per value), batch 1.
 *
 * <p>Grouped-query attention ({@code kvHeads} G below {@code heads} H): k and v hold G heads, so
 * their memory and the K/V traffic of ring and hierarchical ring scale with G, q and out with H;
 * Ulysses counts its K/V heads per rank (replicated when G is below p). mesh2d and composed do not
 * run GQA and are left out.
 */
public final class Planner {

  /** The problem; {@code kvHeads} K/V heads (dividing {@code heads}) under GQA. */
  public record Problem(long seq, int heads, int kvHeads, int headDim, int devices, int nodes,
      long deviceMemoryBytes, boolean causal) {
    public Problem {
      if (seq < 1 || heads < 1 || headDim < 1 || devices < 1 || nodes < 1) {
        throw new IllegalArgumentException("sizes must be positive");
      }
      if (kvHeads < 1 || heads % kvHeads != 0) {
        throw new IllegalArgumentException("kvHeads " + kvHeads + " must be positive and divide"
            + " heads " + heads);
      }
      if (devices % nodes != 0) {
        throw new IllegalArgumentException(devices + " devices do not split evenly over " + nodes
            + " nodes");
      }
    }

    /** Multi-head attention: as many K/V heads as heads. */
    public Problem(long seq, int heads, int headDim, int devices, int nodes,
        long deviceMemoryBytes, boolean causal) {
      this(seq, heads, heads, headDim, devices, nodes, deviceMemoryBytes, causal);
    }

    int perNode() {
      return devices / nodes;
    }

    boolean grouped() {
      return kvHeads < heads;
    }
  }

  /**
   * One candidate. Memory per device: {@code activations} (this device's q, k, v, out and the
   * gathered or received copies the strategy keeps), {@code buffers} (transfer buffers, partial
   * outputs, log-sum-exps), {@code workspace} (the kernel's tiles for one worker). Bytes: sent by
   * the busiest device per layer, and the part of it that crosses nodes.
   */
  public record Candidate(StrategySpec spec, long activations, long buffers, long workspace,
      long bytesSent, long interNodeBytes, boolean fits, String note) {
    public long memory() {
      return activations + buffers + workspace;
    }
  }

  private Planner() {}

  public static List<Candidate> candidates(Problem pr) {
    List<Candidate> out = new ArrayList<>();
    int p = pr.devices();
    ShardLayout layout = pr.causal() ? ShardLayout.zigzag(pr.seq(), p)
        : ShardLayout.contiguous(pr.seq(), p);
    AttentionMask mask = pr.causal() ? AttentionMask.causalMask() : AttentionMask.NONE;
    long g = (long) pr.heads() * pr.headDim();
    long gkv = (long) pr.kvHeads() * pr.headDim(); // k and v features: g unless GQA
    long shard = layout.maxSize();
    long own = 4L * shard * (2 * g + 2 * gkv); // q, out (H heads), k, v (G heads) of this device
    long work = workspace(pr.headDim());
    if (p == 1) {
      out.add(candidate(pr, StrategySpec.of(Backends.LOCAL), own, 4L * shard * pr.heads(), work,
          0, 0, ""));
      return out;
    }
    // ring: two [K|V] buffers of G heads, accumulator + partial with their LSEs (H heads)
    long ringBuffers = 4L * (2 * 2 * shard * gkv + 2 * shard * g + 2 * shard * pr.heads());
    long ringBytes = max(p, r -> RingStrategy.bytesSent(layout, r, 1, pr.kvHeads(),
        pr.headDim()));
    out.add(candidate(pr, StrategySpec.of(Backends.RING), own, ringBuffers, work, ringBytes,
        pr.nodes() > 1 ? ringBytes : 0, pr.grouped() ? "K/V (" + pr.kvHeads() + " heads) pass"
        + " every device" : "K/V pass every device"));
    // ulysses: the full sequence for H/p query heads and their K/V heads
    if (pr.heads() % p == 0 && ulyssesRunsKvHeads(pr.heads(), pr.kvHeads(), p)) {
      long kvPerRank = Math.max(1, pr.kvHeads() / p); // replicated when G < p
      long full = 4L * pr.seq() * pr.headDim() * (2L * pr.heads() / p + 2 * kvPerRank);
      long bytes = max(p, r -> UlyssesStrategy.bytesSent(layout, r, 1, pr.heads(), pr.kvHeads(),
          pr.headDim()));
      // staging: own q rows, and k/v rows for the K/V heads of every peer
      long staging = shard * pr.headDim() * (pr.heads() + 2L * kvPerRank * p);
      out.add(candidate(pr, StrategySpec.of(Backends.ULYSSES), own + full,
          4L * (staging + pr.seq() * pr.heads() / p), work, bytes,
          pr.nodes() > 1 ? bytes : 0, "two all-to-alls"));
    }
    if (pr.grouped()) {
      addHierarchical(pr, layout, shard, g, gkv, own, work, out);
      return out; // mesh2d and composed need as many K/V heads as heads
    }
    // mesh2d, every grid R x C with R, C > 1
    for (int r0 = 2; r0 < p; r0++) {
      if (p % r0 != 0) {
        continue;
      }
      int rows = r0;
      int cols = p / rows;
      long gathered = 4L * (cols * shard * g + 2L * rows * shard * g);
      long partials = 4L * 2 * cols * shard * (g + pr.heads());
      long bytes = max(p, r -> Mesh2dStrategy.bytesSent(layout, rows, cols, r, 1, pr.heads(),
          pr.headDim(), mask));
      out.add(candidate(pr, StrategySpec.of(Backends.MESH2D).withMesh(rows, cols), own + gathered,
          partials, work, bytes, pr.nodes() > 1 ? bytes : 0, "2-D tiles of QKᵀ"));
    }
    // composed A x B: heads A ways inside a group of consecutive devices, ring across groups
    for (int a = 2; a < p; a++) {
      if (p % a != 0 || pr.heads() % a != 0) {
        continue;
      }
      int ways = a;
      long groupRows = shard * ways;
      long groupQkv = 4L * 4 * groupRows * g / ways;
      long ringOfGroups = 4L * (2 * 2 * groupRows * g / ways + 2 * groupRows * g / ways
          + 2 * groupRows * pr.heads() / ways);
      long[] worst = {0, 0};
      for (int r = 0; r < p; r++) {
        long[] b = ComposedStrategy.bytesSent(layout, ways, Backends.RING, r, 1, pr.heads(),
            pr.headDim(), mask);
        if (b[0] + b[1] > worst[0] + worst[1]) {
          worst = b;
        }
      }
      // Inter-node bytes: the head group stays inside a node when it fits in one.
      long inter = pr.nodes() == 1 ? 0 : ways <= pr.perNode() && pr.perNode() % ways == 0
          ? worst[1] : worst[0] + worst[1];
      out.add(candidate(pr, StrategySpec.of(Backends.COMPOSED).withMesh(ways, p / ways),
          own + groupQkv, ringOfGroups, work, worst[0] + worst[1], inter,
          "heads " + ways + " ways, ring over " + (p / ways) + " groups"));
    }
    addHierarchical(pr, layout, shard, g, gkv, own, work, out);
    return out;
  }

  /** Hierarchical ring: ring inside each node, ring between nodes (K/V of G heads travel). */
  private static void addHierarchical(Problem pr, ShardLayout layout, long shard, long g,
      long gkv, long own, long work, List<Candidate> out) {
    int p = pr.devices();
    if (pr.nodes() > 1 && pr.perNode() > 1) {
      int s = pr.perNode();
      long[] worst = {0, 0};
      for (int r = 0; r < p; r++) {
        long[] b = HierarchicalRingStrategy.bytesSent(layout, s, r, 1, pr.kvHeads(),
            pr.headDim());
        if (b[0] + b[1] > worst[0] + worst[1]) {
          worst = b;
        }
      }
      long buffers = 4L * (4 * 2 * shard * gkv + 2 * shard * g + 2 * shard * pr.heads());
      out.add(candidate(pr, StrategySpec.of(Backends.HIERARCHICAL).withNodes(s, Backends.RING,
          Backends.RING), own, buffers, work, worst[0] + worst[1], worst[1],
          "ring in each node of " + s + ", ring across " + pr.nodes() + " nodes"));
    }
  }

  /** Ulysses runs G K/V heads over p ranks when G divides p or p divides G. */
  private static boolean ulyssesRunsKvHeads(int heads, int kvHeads, int p) {
    return kvHeads == heads || kvHeads % p == 0 || p % kvHeads == 0;
  }

  /** The fitting candidate with the fewest inter-node bytes, then the fewest bytes in all. */
  public static Candidate recommend(Problem pr) {
    List<Candidate> all = candidates(pr);
    return all.stream().filter(Candidate::fits)
        .min(Comparator.comparingLong(Candidate::interNodeBytes)
            .thenComparingLong(Candidate::bytesSent).thenComparingLong(Candidate::memory))
        .orElseThrow(() -> new IllegalArgumentException("no strategy fits " + pr.seq()
            + " tokens on " + pr.devices() + " devices of " + gib(pr.deviceMemoryBytes())
            + ": use more devices (the smallest candidate needs "
            + gib(all.stream().mapToLong(Candidate::memory).min().orElse(0)) + " per device)"));
  }

  private static Candidate candidate(Problem pr, StrategySpec spec, long act, long buf, long work,
      long bytes, long inter, String note) {
    return new Candidate(spec, act, buf, work, bytes, inter,
        act + buf + work <= pr.deviceMemoryBytes(), note);
  }

  /** One worker's kernel tiles: Qᵀ and Oᵀ (headDim × 64), a 64 × 64 score tile. */
  static long workspace(int headDim) {
    return 4L * (2 * 64L * headDim + 64 * 64);
  }

  private static long max(int p, java.util.function.IntToLongFunction f) {
    long m = 0;
    for (int r = 0; r < p; r++) {
      m = Math.max(m, f.applyAsLong(r));
    }
    return m;
  }

  static String gib(long b) {
    return String.format("%.2f GiB", b / (1024.0 * 1024 * 1024));
  }
}
