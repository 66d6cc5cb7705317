package dev.mosaic.spark.layers;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.Tensor;

/**
 * A {@link MultiAxisAttention} forward's output and, when it ran for a backward
 * ({@link MultiAxisAttention#forwardForBackward}), what the backward needs: the input with the
 * attention axis moved next to embed, the packed {@code [q | k | v]} projection, the attention
 * output before the output projection and its log-sum-exp {@code [batch][seq][heads]}. Memory is
 * O(n): no n×n matrix is kept.
 *
 * @param output y, in the input's layout
 * @param axis the attention axis, resolved (non-negative)
 * @param movedInput x with the axis moved to position rank − 2; null when nothing was saved
 */
public record AttentionActivations(Tensor output, int axis, Tensor movedInput, float[] qkv,
    Tensor attention, float[] lse, AttentionMask mask) {

  /** Whether the backward can run from this (the forward kept its activations). */
  public boolean saved() {
    return movedInput != null;
  }
}
