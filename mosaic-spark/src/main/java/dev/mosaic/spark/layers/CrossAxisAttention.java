package dev.mosaic.spark.layers;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.Strategy;
import java.util.Arrays;
import java.util.Map;

/**
 * Cross-attention along one axis: queries from {@code x}, keys and values from a second tensor
 * {@code kv} with the same axis layout, with the semantics of PyTorch's
 * {@code nn.MultiheadAttention(query=x, key=kv, value=kv)} applied along that axis and the same
 * packed weights ({@code in_proj_weight} rows {@code [q | k | v]}: q projects x, k and v project
 * kv). The two tensors must agree on every axis except the attention axis, whose lengths may
 * differ; the output has x's shape.
 *
 * <p>Causal is top-left aligned: query position i sees key positions {@code j <= i} of the other
 * tensor (PyTorch's {@code attn_mask = triu(ones(nq, nk), 1)}), so every query sees at least key
 * 0. With no key positions at all the attention output is 0 (the output is
 * {@code out_proj.bias}), where PyTorch gives NaN.
 *
 * <p>Distributed: inside a task, x and kv are the task's shards of their own sequences; a
 * {@link dev.mosaic.spark.strategy.RingStrategy} built with a query layout and a key layout
 * passes the kv shards around the ring. Everything but the axis handling is the
 * {@link MultiAxisAttention} the builder describes (weights, heads, strategy, threads, causal).
 */
public final class CrossAxisAttention implements AutoCloseable {
  private final MultiAxisAttention inner;
  private final Linear queryProj;
  private final Linear keyValueProj;
  private final Linear outProj;
  private final Tensor queryWeight;
  private final Tensor keyValueWeight;

  /** Seeded random weights, not causal, the local backend. */
  public CrossAxisAttention(int embedDim, int numHeads, int attentionAxis) {
    this(MultiAxisAttention.builder(embedDim, numHeads, attentionAxis));
  }

  /** The layer the builder describes, used as cross-attention. */
  public CrossAxisAttention(MultiAxisAttention.Builder options) {
    inner = options.build();
    int e = inner.embedDim();
    AttentionWeights w = inner.weights();
    queryWeight = rows(w.inProjWeight(), 0, e);
    keyValueWeight = rows(w.inProjWeight(), e, 3 * e);
    queryProj = new Linear(queryWeight, rows(w.inProjBias(), 0, e));
    keyValueProj = new Linear(keyValueWeight, rows(w.inProjBias(), e, 3 * e));
    outProj = new Linear(w.outProjWeight(), w.outProjBias());
  }

  /** The options in effect (embedDim, heads, axis, causal, weights, strategy). */
  public MultiAxisAttention attention() {
    return inner;
  }

  /** {@code x}'s positions along the axis attending to {@code kv}'s; the output has x's shape. */
  public Tensor forward(Tensor x, Tensor kv) {
    return run(x, kv, false).output();
  }

  /**
   * As {@link #forward}, keeping what {@link #backward} needs (the projections, the attention
   * output and its log-sum-exp: O(n) memory). Needs a strategy with a backward pass.
   */
  public Activations forwardForBackward(Tensor x, Tensor kv) {
    return run(x, kv, true);
  }

  /**
   * Gradients of {@code sum(y·dy)}: dx (x's shape), dkv (kv's shape) and the four weight
   * gradients under PyTorch's names. Under a sharded strategy dx and dkv are this rank's shards
   * (dkv summed over every rank's queries) and the weight gradients this rank's contribution:
   * the caller sums them over the ranks.
   */
  public Gradients backward(Activations saved, Tensor dy) {
    return CrossAxisAttentionBackward.backward(this, saved, dy);
  }

  private Activations run(Tensor x, Tensor kv, boolean save) {
    checkShapes(x, kv);
    Tensor xs = inner.toSequenceAxis(x);
    Tensor ks = inner.toSequenceAxis(kv);
    int batch = AttentionAxis.batchOf(xs);
    int nq = xs.dim(-2);
    int nk = ks.dim(-2);
    float[] q = queryProj.forward(xs.data(), batch * nq, inner.parallel());
    float[] kvProj = keyValueProj.forward(ks.data(), batch * nk, inner.parallel());
    BlockView[] views = views(q, kvProj, batch, nq, nk);
    Tensor attn = Tensor.zeros(batch, nq, inner.numHeads(), inner.headDim());
    AttentionMask mask = new AttentionMask(inner.causal(), 0, 0, Long.MAX_VALUE);
    float[] lse = save ? new float[batch * nq * inner.numHeads()] : null;
    if (save) {
      inner.strategy().attend(views[0], views[1], views[2], inner.scale(), mask,
          BlockView.of(attn), lse);
    } else {
      inner.strategy().attend(views[0], views[1], views[2], inner.scale(), mask,
          BlockView.of(attn));
    }
    Tensor ys = Tensor.of(outProj.forward(attn.data(), batch * nq, inner.parallel()),
        xs.shape());
    int ax = MultiAxisAttention.checkAxis(inner.attentionAxis(), x.rank(), "attentionAxis");
    Tensor y = ax == x.rank() - 2 ? ys : ys.moveAxis(x.rank() - 2, ax);
    return save ? new Activations(y, ax, xs, ks, q, kvProj, attn, lse, mask)
        : new Activations(y, ax, null, null, null, null, null, null, mask);
  }

  /** Views of q {@code (batch, nq, E)} and of k, v inside the packed {@code (batch, nk, 2E)}. */
  BlockView[] views(float[] q, float[] kv, int batch, int nq, int nk) {
    int e = inner.embedDim();
    int h = inner.numHeads();
    int d = inner.headDim();
    long kvStride = (long) nk * 2 * e;
    int vOffset = kv.length == 0 ? 0 : e; // no rows (an empty shard): nothing to offset into
    return new BlockView[] {
        new BlockView(q, 0, batch, nq, h, d, e, (long) nq * e),
        new BlockView(kv, 0, batch, nk, h, d, 2 * e, kvStride),
        new BlockView(kv, vOffset, batch, nk, h, d, 2 * e, kvStride)};
  }

  /** Same rank, embed last, and equal sizes on every axis but the attention axis. */
  private void checkShapes(Tensor x, Tensor kv) {
    int e = inner.embedDim();
    if (x.rank() < 2 || x.dim(-1) != e) {
      throw new IllegalArgumentException("x must have rank >= 2 and embedDim " + e
          + " last, got " + x);
    }
    if (kv.rank() != x.rank() || kv.dim(-1) != e) {
      throw new IllegalArgumentException("kv must have x's rank " + x.rank() + " and embedDim "
          + e + " last, got " + kv + " (x " + x + ")");
    }
    int ax = MultiAxisAttention.checkAxis(inner.attentionAxis(), x.rank(), "attentionAxis");
    for (int i = 0; i < x.rank(); i++) {
      if (i != ax && x.dim(i) != kv.dim(i)) {
        throw new IllegalArgumentException("kv has shape " + Arrays.toString(kv.shape())
            + " but x has " + Arrays.toString(x.shape()) + ": expected equal sizes on every"
            + " axis except the attention axis " + ax + " (axis " + i + " differs)");
      }
    }
  }

  Tensor queryWeight() {
    return queryWeight;
  }

  Tensor keyValueWeight() {
    return keyValueWeight;
  }

  /** Rows {@code [from, to)} of a matrix, or entries of a vector, copied. */
  private static Tensor rows(Tensor t, int from, int to) {
    int width = t.rank() == 1 ? 1 : t.dim(1);
    float[] data = Arrays.copyOfRange(t.data(), from * width, to * width);
    return t.rank() == 1 ? Tensor.of(data, to - from) : Tensor.of(data, to - from, width);
  }

  @Override
  public void close() {
    inner.close();
  }

  @Override
  public String toString() {
    return "CrossAxisAttention(embed " + inner.embedDim() + ", heads " + inner.numHeads()
        + ", axis " + inner.attentionAxis() + (inner.causal() ? ", causal" : "") + ", "
        + inner.strategy().name() + ")";
  }

  /**
   * A forward's output and, when it ran for a backward, what the backward needs: x and kv with
   * the axis moved next to embed, the q projection {@code (batch, nq, E)}, the packed
   * {@code [k | v]} projection {@code (batch, nk, 2E)}, the attention output before the output
   * projection and its log-sum-exp {@code [batch][nq][heads]}.
   *
   * @param axis the attention axis, resolved (non-negative)
   */
  public record Activations(Tensor output, int axis, Tensor movedQuery, Tensor movedKv,
      float[] q, float[] kvProj, Tensor attention, float[] lse, AttentionMask mask) {
    /** Whether the backward can run from this (the forward kept its activations). */
    public boolean saved() {
      return movedQuery != null;
    }
  }

  /**
   * dx and dkv in the inputs' shapes, and the weight gradients under PyTorch's names
   * ({@code in_proj_weight}, {@code in_proj_bias}, {@code out_proj.weight},
   * {@code out_proj.bias}).
   */
  public record Gradients(Tensor dx, Tensor dkv, Map<String, Tensor> parameters) {}
}
