package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.spark.layers.AttentionActivations;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.Strategy;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The backward of {@link ShardedAttention}: the same shards (contiguous, zigzag for causal), each
 * task runs the layer's forward and backward with its distributed strategy
 * ({@link MultiAxisAttention#backward}), and the driver puts y and dx back in order and sums the
 * tasks' weight gradients (each is its shard's contribution). A strategy without a backward
 * fails every task with its one-line refusal, which the driver rethrows.
 */
public final class ShardedAttentionBackward {
  private ShardedAttentionBackward() {}

  /** y, and the gradients of {@code sum(y·dy)}: dx and the four weights' (PyTorch names). */
  public record Result(Tensor y, Tensor dx, Map<String, Tensor> parameters) {}

  /** One task's input: its rank, its rows of x and of dy, attention axis first. */
  record Rows(int rank, Tensor x, Tensor dy) implements Serializable {}

  /** One task's output: its rows of y and dx, and its share of the weight gradients. */
  record Grads(int rank, Tensor y, Tensor dx, LinkedHashMap<String, Tensor> parameters)
      implements Serializable {}

  public static Result run(MosaicContext ctx, Tensor x, Tensor dy, ShardedAttention.Spec spec) {
    if (!Arrays.equals(x.shape(), dy.shape())) {
      throw new IllegalArgumentException("dy must have y's (= x's) shape "
          + Arrays.toString(x.shape()) + ", got " + Arrays.toString(dy.shape()));
    }
    int rank = x.rank();
    int axis = MultiAxisAttention.checkAxis(spec.axis(), rank, "attentionAxis");
    int p = ctx.spSize();
    int n = x.dim(axis);
    int embed = x.dim(-1);
    ShardedAttention.Spec resolved = ShardedAttention.resolve(spec, n, embed / spec.numHeads(), p);
    resolved.strategy().validate(p, spec.numHeads());
    ShardLayout layout = spec.causal() && p > 1 ? ShardLayout.zigzag(n, p)
        : ShardLayout.contiguous(n, p);
    Tensor xFirst = x.moveAxis(axis, 0);
    Tensor dyFirst = dy.moveAxis(axis, 0);
    List<Rows> shards = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      shards.add(new Rows(r, ShardedAttention.gatherRows(xFirst, layout.segments(r)),
          ShardedAttention.gatherRows(dyFirst, layout.segments(r))));
    }
    ShardFunction<Rows, Grads> fn = (env, it) -> runTask(env, it, resolved, layout, embed);
    List<Grads> out = BarrierRunner.collect(ctx.jsc().parallelize(shards, shards.size()), fn,
        ctx.config(), spec.device(), Grads.class);
    Tensor y = Tensor.zeros(xFirst.shape());
    Tensor dx = Tensor.zeros(xFirst.shape());
    Map<String, double[]> sums = new LinkedHashMap<>();
    Map<String, int[]> shapes = new LinkedHashMap<>();
    for (Grads g : out) {
      ShardedAttention.scatterRows(g.y(), layout.segments(g.rank()), y);
      ShardedAttention.scatterRows(g.dx(), layout.segments(g.rank()), dx);
      g.parameters().forEach((name, t) -> {
        double[] s = sums.computeIfAbsent(name, k -> new double[t.size()]);
        shapes.put(name, t.shape());
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
          s[i] += d[i];
        }
      });
    }
    Map<String, Tensor> params = new LinkedHashMap<>();
    sums.forEach((name, s) -> {
      float[] f = new float[s.length];
      for (int i = 0; i < s.length; i++) {
        f[i] = (float) s[i];
      }
      params.put(name, Tensor.of(f, shapes.get(name)));
    });
    return new Result(y.moveAxis(0, axis), dx.moveAxis(0, axis), params);
  }

  private static Iterator<Grads> runTask(TaskEnv env, Iterator<Rows> records,
      ShardedAttention.Spec spec, ShardLayout layout, int embed) {
    Rows in = records.next();
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
      AttentionActivations a = layer.forwardForBackward(in.x(), spec.keyLimit());
      Gradients g = layer.backward(a, in.dy());
      return List.of(new Grads(env.rank(), a.output(), Tensor.of(g.input(), in.x().shape()),
          new LinkedHashMap<>(g.parameters()))).iterator();
    }
  }
}
