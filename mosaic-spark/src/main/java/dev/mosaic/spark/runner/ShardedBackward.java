package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.Strategy;
import dev.mosaic.spark.strategy.StrategySpec;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Attention forward and backward of one {@code (batch, n, heads, headDim)} problem over the
 * barrier tasks of a stage, at the strategy level (no projections): the driver cuts q, k, v and
 * dO into the layout's shards, task r runs {@link Strategy#attend(BlockView, BlockView, BlockView,
 * float, AttentionMask, BlockView, float[]) attend} with the LSE and then {@link
 * Strategy#attendBackward} on its shard, and the driver puts the shards of O, dQ, dK and dV back
 * in sequence order. What the distributed-backward tests run over real Spark stages (in one JVM
 * and across executor JVMs).
 */
public final class ShardedBackward {
  private ShardedBackward() {}

  /** One rank's inputs (q, k, v, dO), or its results (out, dq, dk, dv). */
  public record Shard(int rank, Tensor[] tensors) implements Serializable {}

  /** The mask, as plain values (the kernel's mask record does not travel). */
  public record Mask(boolean causal, long keyLimit) implements Serializable {
    AttentionMask toMask() {
      return new AttentionMask(causal, 0, 0, keyLimit);
    }
  }

  /**
   * @param inputs q, k, v and dO, each {@code (batch, n, heads, headDim)}
   * @return out, dq, dk and dv over the whole sequence, shaped like q
   */
  public static Tensor[] run(MosaicContext ctx, StrategySpec spec, ShardLayout layout,
      Tensor[] inputs, float scale, Mask mask) {
    int p = ctx.spSize();
    if (layout.parts() != p) {
      throw new IllegalArgumentException("layout has " + layout.parts() + " shards but the"
          + " context runs " + p + " tasks");
    }
    if (inputs.length != 4) {
      throw new IllegalArgumentException("inputs must be q, k, v and dO, got " + inputs.length
          + " tensors");
    }
    List<Shard> shards = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      Tensor[] mine = new Tensor[4];
      for (int i = 0; i < 4; i++) {
        mine[i] = rows(inputs[i], layout.segments(r));
      }
      shards.add(new Shard(r, mine));
    }
    int threads = ctx.config().taskThreads();
    ShardFunction<Shard, Shard> fn = (env, it) -> List.of(
        rankRun(env, spec, layout, it.next(), scale, mask, threads)).iterator();
    List<Shard> results = BarrierRunner.collect(ctx.jsc().parallelize(shards, p), fn,
        ctx.config(), ctx.config().device(), Shard.class);
    Tensor[] full = new Tensor[4];
    for (int i = 0; i < 4; i++) {
      full[i] = Tensor.zeros(inputs[0].shape());
    }
    for (Shard s : results) {
      for (int i = 0; i < 4; i++) {
        scatter(s.tensors()[i], layout.segments(s.rank()), full[i]);
      }
    }
    return full;
  }

  private static Shard rankRun(TaskEnv env, StrategySpec spec, ShardLayout layout, Shard in,
      float scale, Mask mask, int threads) {
    if (in.rank() != env.rank()) {
      throw new IllegalStateException("task " + env.rank() + " got the shard of rank "
          + in.rank());
    }
    Tensor[] x = in.tensors();
    Tensor[] got = new Tensor[4];
    for (int i = 0; i < 4; i++) {
      got[i] = Tensor.zeros(x[0].shape());
    }
    int[] s = x[0].shape();
    float[] lse = new float[s[0] * s[1] * s[2]];
    AttentionMask m = mask.toMask();
    try (AttentionKernel kernel = env.kernel(threads);
        Strategy strategy = Backends.distributed(spec, env.comm(), layout, kernel,
            env.size())) { // node size: only the hierarchical strategies use it
      strategy.attend(BlockView.of(x[0]), BlockView.of(x[1]), BlockView.of(x[2]), scale, m,
          BlockView.of(got[0]), lse);
      strategy.attendBackward(BlockView.of(x[0]), BlockView.of(x[1]), BlockView.of(x[2]),
          BlockView.of(got[0]), lse, BlockView.of(x[3]), scale, m, BlockView.of(got[1]),
          BlockView.of(got[2]), BlockView.of(got[3]));
    }
    return new Shard(env.rank(), got);
  }

  /** Rows of the segments along dim 1 of a (batch, n, heads, d) tensor, in local order. */
  static Tensor rows(Tensor t, List<ShardLayout.Segment> segs) {
    int[] s = t.shape();
    int rowSize = s[2] * s[3];
    int local = segs.stream().mapToInt(ShardLayout.Segment::length).sum();
    Tensor out = Tensor.zeros(s[0], local, s[2], s[3]);
    for (int b = 0; b < s[0]; b++) {
      int pos = 0;
      for (ShardLayout.Segment seg : segs) {
        System.arraycopy(t.data(), Math.toIntExact((b * (long) s[1] + seg.start()) * rowSize),
            out.data(), (b * local + pos) * rowSize, seg.length() * rowSize);
        pos += seg.length();
      }
    }
    return out;
  }

  /** The inverse of {@link #rows}: a shard's rows back to their places in {@code full}. */
  static void scatter(Tensor shard, List<ShardLayout.Segment> segs, Tensor full) {
    int[] s = full.shape();
    int rowSize = s[2] * s[3];
    int local = shard.dim(1);
    for (int b = 0; b < s[0]; b++) {
      int pos = 0;
      for (ShardLayout.Segment seg : segs) {
        System.arraycopy(shard.data(), (b * local + pos) * rowSize, full.data(),
            Math.toIntExact((b * (long) s[1] + seg.start()) * rowSize), seg.length() * rowSize);
        pos += seg.length();
      }
    }
  }
}
