package dev.mosaic.spark.runner;

import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
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

  /** What every task needs to rebuild the layer. */
  public record Spec(int numHeads, int axis, boolean causal, long keyLimit,
      AttentionWeights weights, String backend) implements Serializable {}

  /** One task's input or output: its rank and its rows, attention axis first. */
  public record Shard(int rank, Tensor rows) implements Serializable {}

  private ShardedAttention() {}

  public static Tensor run(MosaicContext ctx, Tensor x, Spec spec) {
    Backends.check(spec.backend());
    if (x.rank() < 2) {
      throw new IllegalArgumentException("input must have rank >= 2, got " + x);
    }
    int rank = x.rank();
    int axis = spec.axis() < 0 ? spec.axis() + rank : spec.axis();
    if (axis < 0 || axis >= rank - 1) {
      throw new IllegalArgumentException("attentionAxis " + spec.axis() + " is out of range for an"
          + " input of rank " + rank + ": expected " + (-rank) + ".." + (rank - 2)
          + " excluding the embed axis (" + (rank - 1) + " or -1)");
    }
    int p = ctx.spSize();
    int n = x.dim(axis);
    ShardLayout layout = spec.causal() && p > 1 ? ShardLayout.zigzag(n, p)
        : ShardLayout.contiguous(n, p);
    Tensor axisFirst = x.moveAxis(axis, 0);
    List<Shard> shards = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      shards.add(new Shard(r, gatherRows(axisFirst, layout.segments(r))));
    }
    int embed = x.dim(-1);
    ShardFunction<Shard, Shard> fn = (env, it) -> runTask(env, it, spec, layout, embed);
    List<Shard> out = BarrierRunner.run(ctx.jsc().parallelize(shards, p), fn, ctx.config(),
        Shard.class).collect();
    Tensor y = Tensor.zeros(axisFirst.shape());
    for (Shard s : out) {
      scatterRows(s.rows(), layout.segments(s.rank()), y);
    }
    return y.moveAxis(0, axis);
  }

  private static Iterator<Shard> runTask(TaskEnv env, Iterator<Shard> records, Spec spec,
      ShardLayout layout, int embed) {
    Shard in = records.next();
    if (in.rank() != env.rank()) {
      throw new IllegalStateException("task " + env.rank() + " received shard " + in.rank());
    }
    int threads = env.config().taskThreads();
    try (CpuFlashAttention kernel = new CpuFlashAttention(threads);
        MultiAxisAttention layer = MultiAxisAttention.builder(embed, spec.numHeads(), 0)
            .weights(spec.weights()).causal(spec.causal()).threads(threads)
            .strategy(new RingStrategy(env.comm(), layout, kernel)).build()) {
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
