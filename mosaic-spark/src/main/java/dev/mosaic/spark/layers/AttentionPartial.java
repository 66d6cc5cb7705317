package dev.mosaic.spark.layers;

import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.Tensor;
import java.io.Serializable;

/**
 * Queries' attention over one part of the keys, before the output projection: the normalised
 * output {@code (batch, seq, heads, headDim)} and its log-sum-exp {@code [batch][seq][heads]}.
 * Partials over disjoint key parts {@link #merge} exactly; {@link MultiAxisAttention#finish}
 * turns the merged one into the layer's output. {@code shape} is the queries' input shape.
 */
public record AttentionPartial(Tensor output, float[] lse, int[] shape) implements Serializable {

  /** Merges {@code other} (the same queries over other keys) into this one, in place. */
  public AttentionPartial merge(AttentionPartial other) {
    if (!java.util.Arrays.equals(output.shape(), other.output.shape())) {
      throw new IllegalArgumentException("partials differ in shape: "
          + java.util.Arrays.toString(output.shape()) + " vs "
          + java.util.Arrays.toString(other.output.shape()));
    }
    LseMerge.merge(BlockView.of(output), lse, BlockView.of(other.output), other.lse);
    return this;
  }
}
