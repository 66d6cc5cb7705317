package dev.mosaic.spark.layers;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
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
 * <p>Inside a Spark task the input is the task's shard of the attention axis and the
 * {@link Strategy} does the cross-task part; on its own the layer runs {@code local}.
 */
public final class MultiAxisAttention implements AutoCloseable {
  private final int embedDim;
  private final int numHeads;
  private final int headDim;
  private final int axis;
  private final boolean causal;
  private final AttentionWeights weights;
  private final Linear inProj;
  private final Linear outProj;
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
    axis = b.axis;
    causal = b.causal;
    weights = (b.weights != null ? b.weights : AttentionWeights.random(embedDim, b.seed))
        .validate(embedDim, "");
    inProj = new Linear(weights.inProjWeight(), weights.inProjBias());
    outProj = new Linear(weights.outProjWeight(), weights.outProjBias());
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
    int rank = x.rank();
    if (rank < 2) {
      throw new IllegalArgumentException(
          "input must have rank >= 2 (an attention axis and embed last), got " + x);
    }
    if (x.dim(-1) != embedDim) {
      throw new IllegalArgumentException("input's last dimension is " + x.dim(-1)
          + ", expected embedDim " + embedDim + " (input " + x + ")");
    }
    int ax = checkAxis(axis, rank, "attentionAxis");
    int seqPos = rank - 2;
    Tensor xs = ax == seqPos ? x : x.moveAxis(ax, seqPos);
    int seq = xs.dim(seqPos);
    int rows = xs.size() / embedDim;
    int batch = seq == 0 ? 0 : rows / seq;
    int e3 = 3 * embedDim;

    float[] qkv = inProj.forward(xs.data(), rows, parallel);
    long batchStride = (long) seq * e3;
    BlockView q = new BlockView(qkv, 0, batch, seq, numHeads, headDim, e3, batchStride);
    BlockView k = new BlockView(qkv, embedDim, batch, seq, numHeads, headDim, e3, batchStride);
    BlockView v = new BlockView(qkv, 2 * embedDim, batch, seq, numHeads, headDim, e3, batchStride);
    Tensor attn = Tensor.zeros(batch, seq, numHeads, headDim);
    AttentionMask mask = new AttentionMask(causal, 0, 0, keyLimit);
    strategy.attend(q, k, v, (float) (1 / Math.sqrt(headDim)), mask, BlockView.of(attn));

    Tensor ys = Tensor.of(outProj.forward(attn.data(), rows, parallel), xs.shape());
    return ax == seqPos ? ys : ys.moveAxis(seqPos, ax);
  }

  /**
   * Resolves a possibly negative attention axis of an input of {@code rank} (embed last, so the
   * embed axis is not allowed); the error names the argument {@code name}.
   */
  public static int checkAxis(int axis, int rank, String name) {
    int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank - 1) {
      throw new IllegalArgumentException(name + " " + axis + " is out of range for an input of"
          + " rank " + rank + ": expected " + (-rank) + ".." + (rank - 2)
          + " excluding the embed axis (" + (rank - 1) + " or -1)");
    }
    return a;
  }

  @Override
  public void close() {
    parallel.close();
    if (ownsStrategy) {
      strategy.close();
    }
  }

  @Override
  public String toString() {
    return "MultiAxisAttention(embed " + embedDim + ", heads " + numHeads + ", axis " + axis
        + (causal ? ", causal" : "") + ", " + strategy.name() + ")";
  }

  /** Options; everything but the three sizes has a default. */
  public static final class Builder {
    private final int embedDim;
    private final int numHeads;
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

    /** The four PyTorch-named tensors under {@code prefix} in {@code tensors}. */
    public Builder weights(Map<String, Tensor> tensors, String prefix) {
      this.weights = AttentionWeights.from(tensors, prefix, embedDim);
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
