package dev.mosaic.spark.layers;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.Strategy;
import java.util.Map;

/**
 * Multi-head attention over any one axis of a tensor whose last axis is the embedding, with the
 * semantics of PyTorch's {@code nn.MultiheadAttention} applied along that axis: move the axis next
 * to {@code embed}, project with the packed {@code [q | k | v]} matrix, split heads, attend with
 * scale {@code 1/√headDim}, merge heads, project out, move the axis back. The output has the
 * input's shape.
 *
 * <p>Grouped-query attention ({@link Builder#numKvHeads}): G K/V heads of {@code d = E/H}
 * features serve the H query heads, query head i reading K/V head ⌊i·G/H⌋; the packed projection
 * is then {@code [E + 2·G·d, E]} ({@link AttentionWeights#kvDim}), loaded from Hugging Face-style
 * {@code q_proj/k_proj/v_proj/o_proj} tensors by {@link SeparateProjections}. Strategies move only
 * the G K/V heads.
 *
 * <p>Inside a Spark task the input is the task's shard of the attention axis and the
 * {@link Strategy} does the cross-task part; on its own the layer runs {@code local}.
 *
 * <p>The layer holds the configuration, the packed projections and the forward pass; the axis
 * moves are {@link AttentionAxis}'s, attending to cached keys ({@link #keyValues},
 * {@link #attend}) is {@link CachedKeyAttention}'s and the backward pass is
 * {@link MultiAxisAttentionBackward}'s.
 */
public final class MultiAxisAttention implements AutoCloseable {
  private final int embedDim;
  private final int numHeads;
  private final int numKvHeads;
  private final int kvDim; // numKvHeads·headDim: features of k and of v
  private final int headDim;
  private final int axis;
  private final boolean causal;
  private final AttentionWeights weights;
  private final Linear inProj;
  private final Linear outProj;
  private final CachedKeyAttention cachedKeys;
  private final Strategy strategy;
  private final boolean ownsStrategy;
  private final Parallel parallel;

  /** Seeded random weights, not causal, all processors. */
  public MultiAxisAttention(int embedDim, int numHeads, int attentionAxis, String backend) {
    this(builder(embedDim, numHeads, attentionAxis).backend(backend));
  }

  public static Builder builder(int embedDim, int numHeads, int attentionAxis) {
    return new Builder(embedDim, numHeads, attentionAxis);
  }

  private MultiAxisAttention(Builder b) {
    if (b.embedDim <= 0) {
      throw new IllegalArgumentException("embedDim must be positive, got " + b.embedDim);
    }
    if (b.numHeads <= 0) {
      throw new IllegalArgumentException("numHeads must be positive, got " + b.numHeads);
    }
    if (b.embedDim % b.numHeads != 0) {
      throw new IllegalArgumentException("embedDim " + b.embedDim + " is not divisible by numHeads "
          + b.numHeads + " (each head gets embedDim/numHeads features)");
    }
    if (b.threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + b.threads);
    }
    embedDim = b.embedDim;
    numHeads = b.numHeads;
    headDim = embedDim / numHeads;
    numKvHeads = b.numKvHeads > 0 ? b.numKvHeads : inferKvHeads(b.weights, embedDim, headDim,
        numHeads);
    SeparateProjections.checkHeads(embedDim, numHeads, numKvHeads);
    kvDim = numKvHeads * headDim;
    axis = b.axis;
    causal = b.causal;
    weights = (b.weights != null ? b.weights : AttentionWeights.random(embedDim, kvDim, b.seed))
        .validate(embedDim, kvDim, "");
    inProj = new Linear(weights.inProjWeight(), weights.inProjBias());
    outProj = new Linear(weights.outProjWeight(), weights.outProjBias());
    cachedKeys = new CachedKeyAttention(this, weights, b.device, b.threads, b.gpuDtype);
    if (b.strategy != null) {
      strategy = b.strategy;
      ownsStrategy = false;
    } else {
      strategy = Backends.standalone(b.backend, b.threads, b.device, b.gpuDtype);
      ownsStrategy = true;
    }
    parallel = new Parallel(b.threads, "mosaic-layer");
  }

  public int embedDim() {
    return embedDim;
  }

  public int numHeads() {
    return numHeads;
  }

  public int headDim() {
    return headDim;
  }

  /** K/V heads: {@link #numHeads} unless grouped-query attention. */
  public int numKvHeads() {
    return numKvHeads;
  }

  /**
   * The K/V head count packed weights imply ({@code kvDim/headDim}), or numHeads without weights
   * or when they do not say (validate then names the bad shape).
   */
  private static int inferKvHeads(AttentionWeights w, int embedDim, int headDim, int numHeads) {
    int kv = w == null ? -1 : w.kvDim();
    return kv > 0 && kv % headDim == 0 && kv <= embedDim ? kv / headDim : numHeads;
  }

  public int attentionAxis() {
    return axis;
  }

  public boolean causal() {
    return causal;
  }

  public AttentionWeights weights() {
    return weights;
  }

  public Strategy strategy() {
    return strategy;
  }

  /** Attention along the layer's axis; every position sees every other (causal if configured). */
  public Tensor forward(Tensor x) {
    return forward(x, Long.MAX_VALUE);
  }

  /**
   * As {@link #forward(Tensor)}, but positions along the axis see only keys at positions
   * {@code < keyLimit} (for example TabPFN's test rows attending to the training rows only).
   */
  public Tensor forward(Tensor x, long keyLimit) {
    return run(x, keyLimit, false).output();
  }

  /**
   * As {@link #forward(Tensor, long)}, and keeps what {@link #backward} needs (the projections,
   * the attention output and its log-sum-exp). Needs a strategy with a backward pass.
   */
  public AttentionActivations forwardForBackward(Tensor x, long keyLimit) {
    return run(x, keyLimit, true);
  }

  /**
   * Gradients of {@code sum(y·dy)} for the {@code y} of {@code saved}: {@code input()} is dx in
   * x's layout, {@code parameters()} holds {@code in_proj_weight}, {@code in_proj_bias},
   * {@code out_proj.weight}, {@code out_proj.bias} (PyTorch's names and shapes). Under a sharded
   * strategy dx is this rank's shard and the weight gradients are this shard's contribution
   * only: the caller sums them over the ranks.
   */
  public Gradients backward(AttentionActivations saved, Tensor dy) {
    return MultiAxisAttentionBackward.backward(this, saved, dy);
  }

  private AttentionActivations run(Tensor x, long keyLimit, boolean save) {
    Tensor xs = toSequenceAxis(x);
    int ax = AttentionAxis.resolve(axis, x.rank(), "attentionAxis");
    int seq = xs.dim(-2);
    int rows = xs.size() / embedDim;
    int batch = seq == 0 ? 0 : rows / seq;

    float[] qkv = inProj.forward(xs.data(), rows, parallel);
    BlockView[] qkvViews = qkvViews(qkv, batch, seq);
    Tensor attn = Tensor.zeros(batch, seq, numHeads, headDim);
    AttentionMask mask = new AttentionMask(causal, 0, 0, keyLimit);
    float scale = scale();
    float[] lse = null;
    if (save) {
      lse = new float[batch * seq * numHeads];
      strategy.attend(qkvViews[0], qkvViews[1], qkvViews[2], scale, mask, BlockView.of(attn), lse);
    } else {
      strategy.attend(qkvViews[0], qkvViews[1], qkvViews[2], scale, mask, BlockView.of(attn));
    }

    Tensor ys = Tensor.of(outProj.forward(attn.data(), rows, parallel), xs.shape());
    Tensor y = AttentionAxis.fromSequence(ys, ax);
    return save ? new AttentionActivations(y, ax, xs, qkv, attn, lse, mask)
        : new AttentionActivations(y, ax, null, null, null, null, mask);
  }

  /**
   * q, k and v of a packed {@code [q | k | v]} array of {@code batch·seq} rows, as views; k and v
   * have {@link #numKvHeads} heads.
   */
  BlockView[] qkvViews(float[] qkv, int batch, int seq) {
    int row = projectedWidth();
    long batchStride = (long) seq * row;
    return new BlockView[] {
        new BlockView(qkv, 0, batch, seq, numHeads, headDim, row, batchStride),
        new BlockView(qkv, embedDim, batch, seq, numKvHeads, headDim, row, batchStride),
        new BlockView(qkv, embedDim + kvDim, batch, seq, numKvHeads, headDim, row, batchStride)};
  }

  /** Floats of one row of the packed projection: {@code E + 2·G·d} (3E for MHA). */
  int projectedWidth() {
    return embedDim + 2 * kvDim;
  }

  float scale() {
    return (float) (1 / Math.sqrt(headDim));
  }

  Parallel parallel() {
    return parallel;
  }

  /**
   * The keys and values {@link #forward} computes for {@code x}'s positions along the layer's
   * axis, kept so that queries of other inputs can attend to them ({@link #attend}).
   */
  public KeyValues keyValues(Tensor x) {
    return cachedKeys.keyValues(x);
  }

  /**
   * The layer's output for {@code x}'s positions as queries, attending to the given keys and
   * values instead of {@code x}'s own: the same numbers as {@link #forward(Tensor, long)} gives
   * for those positions when the keys it sees are exactly the cached ones. Keys split into parts
   * (shards along the axis, in any order) are attended part by part and merged exactly
   * ({@link AttentionPartial#merge}).
   */
  public Tensor attend(Tensor x, KeyValues... parts) {
    return cachedKeys.attend(x, parts);
  }

  /** {@code x}'s queries over one part of the keys, before the output projection. */
  public AttentionPartial partial(Tensor x, KeyValues keys) {
    return cachedKeys.partial(x, keys);
  }

  /** The output projection of a (merged) partial, moved back to the queries' input shape. */
  public Tensor finish(AttentionPartial merged) {
    return cachedKeys.finish(merged);
  }

  /** {@code x} checked and with the attention axis moved next to the embedding. */
  Tensor toSequenceAxis(Tensor x) {
    return AttentionAxis.toSequence(x, axis, embedDim);
  }

  Linear outProj() {
    return outProj;
  }

  /**
   * Resolves a possibly negative attention axis of an input of {@code rank} (embed last, so the
   * embed axis is not allowed); the error names the argument {@code name}.
   */
  public static int checkAxis(int axis, int rank, String name) {
    return AttentionAxis.resolve(axis, rank, name);
  }

  @Override
  public void close() {
    cachedKeys.close();
    parallel.close();
    if (ownsStrategy) {
      strategy.close();
    }
  }

  @Override
  public String toString() {
    return "MultiAxisAttention(embed " + embedDim + ", heads " + numHeads
        + (numKvHeads != numHeads ? ", kv heads " + numKvHeads : "") + ", axis " + axis
        + (causal ? ", causal" : "") + ", " + strategy.name() + ")";
  }

  /** Options; everything but the three sizes has a default. */
  public static final class Builder {
    private final int embedDim;
    private final int numHeads;
    private int numKvHeads; // 0: from the weights, else numHeads
    private int axis;
    private String backend = Backends.LOCAL;
    private Strategy strategy;
    private AttentionWeights weights;
    private long seed = 0;
    private boolean causal;
    private int threads = Runtime.getRuntime().availableProcessors();
    private String device = dev.mosaic.spark.gpu.Devices.AUTO;
    private dev.mosaic.kernels.gpu.GpuDtype gpuDtype = dev.mosaic.kernels.gpu.GpuDtype.FP32;

    private Builder(int embedDim, int numHeads, int axis) {
      this.embedDim = embedDim;
      this.numHeads = numHeads;
      this.axis = axis;
    }

    /** The attention axis (negative counts from the end). */
    public Builder axis(int axis) {
      this.axis = axis;
      return this;
    }

    /** A backend by name ({@code local} here; distributed ones come from the Spark runner). */
    public Builder backend(String name) {
      this.backend = Backends.check(name);
      return this;
    }

    /** A ready strategy (for example a ring over this task's communicator); not closed by us. */
    public Builder strategy(Strategy s) {
      this.strategy = s;
      return this;
    }

    public Builder weights(AttentionWeights w) {
      this.weights = w;
      return this;
    }

    /**
     * The weights under {@code prefix} in {@code tensors}: the four PyTorch
     * {@code nn.MultiheadAttention} tensors, or Hugging Face-style {@code q_proj/k_proj/v_proj/
     * o_proj} ({@link SeparateProjections}) when {@code q_proj.weight} is there, with the K/V
     * head count given by {@link #numKvHeads} (set it first) or implied by {@code k_proj.weight}.
     */
    public Builder weights(Map<String, Tensor> tensors, String prefix) {
      if (SeparateProjections.present(tensors, prefix)) {
        int kv = numKvHeads > 0 ? numKvHeads
            : SeparateProjections.kvHeadsOf(tensors, prefix, embedDim, numHeads);
        this.weights = SeparateProjections.read(tensors, prefix, embedDim, numHeads, kv);
        this.numKvHeads = kv;
      } else {
        this.weights = AttentionWeights.from(tensors, prefix, embedDim);
      }
      return this;
    }

    /**
     * Grouped-query attention: {@code g} K/V heads, dividing numHeads (default: what the weights
     * imply, else numHeads; 1 is multi-query attention).
     */
    public Builder numKvHeads(int g) {
      this.numKvHeads = g;
      return this;
    }

    /** Seed of the random initialisation used when no weights are given. */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    public Builder causal(boolean causal) {
      this.causal = causal;
      return this;
    }

    /**
     * {@code cpu}, {@code gpu} or {@code auto} (default: the GPU where one was assigned, else the
     * CPU) for the layer's own strategy; a strategy given with {@link #strategy} brings its own
     * kernel.
     */
    public Builder device(String device) {
      this.device = dev.mosaic.spark.gpu.Devices.check(device);
      return this;
    }

    /**
     * Storage type of Q/K/V on the GPU (default fp32; fp16/bf16 halve the bytes, arithmetic stays
     * fp32). The CPU kernel computes in fp32 whatever this says.
     */
    public Builder gpuDtype(dev.mosaic.kernels.gpu.GpuDtype dtype) {
      this.gpuDtype = java.util.Objects.requireNonNull(dtype, "gpuDtype");
      return this;
    }

    public Builder threads(int threads) {
      this.threads = threads;
      return this;
    }

    public MultiAxisAttention build() {
      return new MultiAxisAttention(this);
    }
  }
}
