package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.SeparateProjections;

/**
 * The attention layer over many whole sequences packed into one buffer: one input projection over
 * all their rows, one varlen kernel call ({@link AttentionKernel#forwardVarlen}: no padding, no
 * score across sequences), one output projection. The same numbers as running the layer
 * ({@code MultiAxisAttention} along axis 0) on each sequence alone, up to the kernel's rounding.
 * Grouped-query attention: k and v have {@code kvHeads} heads (the projection is
 * {@code E + 2·G·d} wide), query head i reads K/V head ⌊i·G/H⌋ as in the layer.
 */
final class PackedLayer implements AutoCloseable {
  private final int embed;
  private final int heads;
  private final int kvHeads;
  private final AttentionMask mask;
  private final Linear inProj;
  private final Linear outProj;
  private final AttentionKernel kernel;
  private final Parallel parallel;

  /** Takes ownership of {@code kernel}: {@link #close} closes it. */
  PackedLayer(AttentionWeights weights, int embed, int heads, int kvHeads, boolean causal,
      long keyLimit, AttentionKernel kernel, int threads) {
    SeparateProjections.checkHeads(embed, heads, kvHeads);
    weights.validate(embed, kvHeads * (embed / heads), "");
    this.embed = embed;
    this.heads = heads;
    this.kvHeads = kvHeads;
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
    int kvDim = kvHeads * d;
    int width = embed + 2 * kvDim; // one row of [q | k | v]
    // Positions are the rows (stride: all features of a position), features the batch.
    int position = Math.multiplyExact(features, width);
    float[] qkv = inProj.forward(x, rows, parallel);
    BlockView q = new BlockView(qkv, 0, features, positions, heads, d, position, width);
    BlockView k = new BlockView(qkv, embed, features, positions, kvHeads, d, position, width);
    BlockView v = new BlockView(qkv, embed + kvDim, features, positions, kvHeads, d, position,
        width);
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
