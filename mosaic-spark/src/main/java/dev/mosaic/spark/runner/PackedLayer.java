package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.spark.layers.AttentionWeights;

/**
 * The attention layer over many whole sequences packed into one buffer: one input projection over
 * all their rows, one varlen kernel call ({@link AttentionKernel#forwardVarlen}: no padding, no
 * score across sequences), one output projection. The same numbers as running the layer
 * ({@code MultiAxisAttention} along axis 0) on each sequence alone, up to the kernel's rounding.
 */
final class PackedLayer implements AutoCloseable {
  private final int embed;
  private final int heads;
  private final AttentionMask mask;
  private final Linear inProj;
  private final Linear outProj;
  private final AttentionKernel kernel;
  private final Parallel parallel;

  /** Takes ownership of {@code kernel}: {@link #close} closes it. */
  PackedLayer(AttentionWeights weights, int embed, int heads, boolean causal, long keyLimit,
      AttentionKernel kernel, int threads) {
    if (embed % heads != 0) {
      throw new IllegalArgumentException("embed " + embed + " is not divisible by numHeads "
          + heads);
    }
    weights.validate(embed, "");
    this.embed = embed;
    this.heads = heads;
    this.mask = new AttentionMask(causal, 0, 0, keyLimit);
    this.inProj = new Linear(weights.inProjWeight(), weights.inProjBias());
    this.outProj = new Linear(weights.outProjWeight(), weights.outProjBias());
    this.kernel = kernel;
    this.parallel = new Parallel(threads, "mosaic-packed");
  }

  /**
   * @param x the sequences' rows back to back: sequence {@code s} holds positions
   *     {@code [cu[s], cu[s+1])}, each position {@code features} vectors of {@code embed} floats
   *     (attention runs along positions, separately for each feature)
   * @return the layer's output, laid out like {@code x}
   */
  float[] forward(float[] x, int[] cu, int features) {
    int positions = cu[cu.length - 1];
    int rows = Math.multiplyExact(positions, features);
    int d = embed / heads;
    int e3 = 3 * embed;
    float[] qkv = inProj.forward(x, rows, parallel);
    BlockView q = new BlockView(qkv, 0, features, positions, heads, d, features * e3, e3);
    BlockView k = new BlockView(qkv, embed, features, positions, heads, d, features * e3, e3);
    BlockView v = new BlockView(qkv, 2 * embed, features, positions, heads, d, features * e3, e3);
    float[] attn = new float[rows * embed];
    BlockView out = new BlockView(attn, 0, features, positions, heads, d, features * embed, embed);
    float[] lse = new float[rows * heads];
    kernel.forwardVarlen(q, k, v, VarlenSequences.of(cu), (float) (1 / Math.sqrt(d)), mask, out,
        lse);
    return outProj.forward(attn, rows, parallel);
  }

  @Override
  public void close() {
    parallel.close();
    kernel.close();
  }
}
