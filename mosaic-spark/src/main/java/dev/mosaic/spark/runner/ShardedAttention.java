package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.plan.Planner;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.Strategy;
import dev.mosaic.spark.strategy.StrategySpec;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * {@link MultiAxisAttention} over a tensor held by the driver, sharded along the attention axis
 * over {@code spSize} barrier tasks: the tensor is cut into shards (contiguous, or zigzag for
 * causal so every task does equal work), each task runs the layer with a distributed strategy on
 * its shard, and the output shards are put back in order.
 */
public final class ShardedAttention {
  private static final System.Logger LOG = System.getLogger(ShardedAttention.class.getName());

  /** What every task needs to rebuild the layer. */
  public record Spec(int numHeads, int axis, boolean causal, long keyLimit,
      AttentionWeights weights, StrategySpec strategy, String device) implements Serializable {

    public Spec {
      Devices.check(device);
    }

    /** On the default device ({@code auto}: the GPU Spark assigned to a task, else the CPU). */
    public Spec(int numHeads, int axis, boolean causal, long keyLimit, AttentionWeights weights,
        StrategySpec strategy) {
      this(numHeads, axis, causal, keyLimit, weights, strategy, Devices.AUTO);
    }

    /** A backend by name with its default shape, on the default device. */
    public Spec(int numHeads, int axis, boolean causal, long keyLimit, AttentionWeights weights,
        String backend) {
      this(numHeads, axis, causal, keyLimit, weights, StrategySpec.of(backend));
    }

    public String backend() {
      return strategy.backend();
    }

    /**
     * K/V heads the weights carry (grouped-query attention: {@code in_proj_weight} of
     * {@code E + 2·G·d} rows, d = E/H, as {@code SeparateProjections} loads q/k/v/o_proj); the
     * layer infers the same count. {@code numHeads} without weights or for multi-head ones.
     */
    public int numKvHeads() {
      if (weights == null || numHeads < 1 || weights.outProjWeight().rank() != 2) {
        return numHeads;
      }
      int embed = weights.outProjWeight().dim(0);
      int d = embed % numHeads == 0 ? embed / numHeads : 0;
      int kv = weights.kvDim();
      return d > 0 && kv > 0 && kv % d == 0 && kv <= embed ? kv / d : numHeads;
    }
  }

  /** One task's input or output: its rank and its rows, attention axis first. */
  public record Shard(int rank, Tensor rows) implements Serializable {}

  private ShardedAttention() {}

  public static Tensor run(MosaicContext ctx, Tensor x, Spec spec) {
    if (x.rank() < 2) {
      throw new IllegalArgumentException("input must have rank >= 2, got " + x);
    }
    int rank = x.rank();
    int axis = MultiAxisAttention.checkAxis(spec.axis(), rank, "attentionAxis");
    int p = ctx.spSize();
    int n = x.dim(axis);
    int embed = x.dim(-1);
    Spec resolved = resolve(spec, n, embed / spec.numHeads(), p);
    resolved.strategy().validate(p, spec.numHeads());
    ShardLayout layout = spec.causal() && p > 1 ? ShardLayout.zigzag(n, p)
        : ShardLayout.contiguous(n, p);
    Tensor axisFirst = x.moveAxis(axis, 0);
    List<Shard> shards = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      shards.add(new Shard(r, gatherRows(axisFirst, layout.segments(r))));
    }
    ShardFunction<Shard, Shard> fn = (env, it) -> runTask(env, it, resolved, layout, embed);
    List<Shard> out = collectWithRetry(ctx, shards, fn, spec.device());
    Tensor y = Tensor.zeros(axisFirst.shape());
    for (Shard s : out) {
      scatterRows(s.rows(), layout.segments(s.rank()), y);
    }
    return y.moveAxis(0, axis);
  }

  /** {@code auto} becomes the planner's recommendation for this size; others stay. */
  static Spec resolve(Spec spec, long n, int headDim, int p) {
    if (!spec.backend().equals(Backends.AUTO)) {
      return spec;
    }
    Planner.Candidate best = Planner.recommend(new Planner.Problem(n, spec.numHeads(),
        spec.numKvHeads(), headDim, p, 1, Long.MAX_VALUE, spec.causal()));
    LOG.log(System.Logger.Level.INFO, "backend auto chose " + best.spec() + " for " + n
        + " tokens, " + spec.numHeads() + " heads x " + headDim + " on " + p + " tasks: sends "
        + best.bytesSent() + " bytes per task (fewest of " + Backends.ALL + ")");
    return new Spec(spec.numHeads(), spec.axis(), spec.causal(), spec.keyLimit(), spec.weights(),
        best.spec(), spec.device());
  }

  /**
   * Runs the barrier job and collects the shards. A barrier stage whose result goes straight to
   * the driver is not retried by Spark, so a failed attempt is re-run here, up to
   * {@code spark.mosaic.job.maxAttempts} times — but only when the failure was transient (a task
   * lost mid-ring, a timeout): one that would recur (bad input) is thrown at once as the task's
   * own error ({@link BarrierRunner#collect}).
   */
  private static List<Shard> collectWithRetry(MosaicContext ctx, List<Shard> shards,
      ShardFunction<Shard, Shard> fn, String device) {
    int attempts = ctx.config().jobAttempts();
    for (int attempt = 1; ; attempt++) {
      try {
        return BarrierRunner.collect(ctx.jsc().parallelize(shards, shards.size()), fn,
            ctx.config(), device, Shard.class);
      } catch (Exception e) { // Scala throws SparkException without declaring it
        if (!(e instanceof org.apache.spark.SparkException) || attempt >= attempts) {
          throw e;
        }
        LOG.log(System.Logger.Level.WARNING, "Mosaic barrier job attempt " + attempt + " of "
            + attempts + " failed, running it again: " + e.getMessage());
      }
    }
  }

  private static Iterator<Shard> runTask(TaskEnv env, Iterator<Shard> records, Spec spec,
      ShardLayout layout, int embed) {
    Shard in = records.next();
    if (in.rank() != env.rank()) {
      throw new IllegalStateException("task " + env.rank() + " received shard " + in.rank());
    }
    int threads = env.config().taskThreads();
    int hostNodeSize = spec.strategy().backend().equals(Backends.HIERARCHICAL)
        && spec.strategy().intraNodeSize() == 0 ? env.ranksPerHost() : 0;
    try (AttentionKernel kernel = env.kernel(threads);
        Strategy strategy = Backends.distributed(spec.strategy(), env.comm(), layout, kernel,
            hostNodeSize);
        MultiAxisAttention layer = MultiAxisAttention.builder(embed, spec.numHeads(), 0)
            .weights(spec.weights()).causal(spec.causal()).threads(threads)
            .strategy(strategy).build()) {
      return List.of(new Shard(env.rank(), layer.forward(in.rows(), spec.keyLimit()))).iterator();
    }
  }

  /** Rows of the segments, concatenated, from an axis-first tensor. */
  static Tensor gatherRows(Tensor axisFirst, List<ShardLayout.Segment> segs) {
    int[] shape = axisFirst.shape();
    int rowSize = axisFirst.size() / Math.max(1, shape[0]);
    int rows = 0;
    for (ShardLayout.Segment s : segs) {
      rows += s.length();
    }
    shape[0] = rows;
    Tensor out = Tensor.zeros(shape);
    int pos = 0;
    for (ShardLayout.Segment s : segs) {
      System.arraycopy(axisFirst.data(), (int) s.start() * rowSize, out.data(), pos * rowSize,
          s.length() * rowSize);
      pos += s.length();
    }
    return out;
  }

  static void scatterRows(Tensor shard, List<ShardLayout.Segment> segs, Tensor axisFirst) {
    int rowSize = axisFirst.size() / Math.max(1, axisFirst.dim(0));
    int pos = 0;
    for (ShardLayout.Segment s : segs) {
      System.arraycopy(shard.data(), pos * rowSize, axisFirst.data(), (int) s.start() * rowSize,
          s.length() * rowSize);
      pos += s.length();
    }
  }
}
