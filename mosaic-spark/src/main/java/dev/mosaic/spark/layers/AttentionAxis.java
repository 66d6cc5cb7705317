package dev.mosaic.spark.layers;

import dev.mosaic.kernels.Tensor;

/**
 * The axis bookkeeping of attention over any one axis of a tensor whose last axis is the
 * embedding: the attended axis is moved next to the embedding (so the input reads as
 * {@code (batch…, seq, E)} with every other axis folded into the batch), attended, and moved back.
 */
final class AttentionAxis {
  private AttentionAxis() {}

  /**
   * Resolves a possibly negative attention axis of an input of {@code rank} (embed last, so the
   * embed axis is not allowed); the error names the argument {@code name}.
   */
  static int resolve(int axis, int rank, String name) {
    int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank - 1) {
      throw new IllegalArgumentException(name + " " + axis + " is out of range for an input of"
          + " rank " + rank + ": expected " + (-rank) + ".." + (rank - 2)
          + " excluding the embed axis (" + (rank - 1) + " or -1)");
    }
    return a;
  }

  /** {@code x} checked (rank ≥ 2, {@code embedDim} last) with axis {@code axis} moved to -2. */
  static Tensor toSequence(Tensor x, int axis, int embedDim) {
    int rank = x.rank();
    if (rank < 2) {
      throw new IllegalArgumentException(
          "input must have rank >= 2 (an attention axis and embed last), got " + x);
    }
    if (x.dim(-1) != embedDim) {
      throw new IllegalArgumentException("input's last dimension is " + x.dim(-1)
          + ", expected embedDim " + embedDim + " (input " + x + ")");
    }
    int ax = resolve(axis, rank, "attentionAxis");
    int seqPos = rank - 2;
    return ax == seqPos ? x : x.moveAxis(ax, seqPos);
  }

  /** The inverse of {@link #toSequence}: axis -2 of {@code ys} moved back to {@code ax}. */
  static Tensor fromSequence(Tensor ys, int ax) {
    int seqPos = ys.rank() - 2;
    return ax == seqPos ? ys : ys.moveAxis(seqPos, ax);
  }

  /** The shape {@link #toSequence} gives an input of shape {@code shape} attended along ax. */
  static int[] sequenceShape(int[] shape, int ax) {
    int rank = shape.length;
    int[] perm = Tensor.moveAxisPermutation(rank, ax, rank - 2);
    int[] moved = new int[rank];
    for (int i = 0; i < rank; i++) {
      moved[i] = shape[perm[i]];
    }
    return moved;
  }

  /** The product of the axes before the last two (the batch of a moved input). */
  static int batchOf(Tensor xs) {
    int batch = 1;
    for (int i = 0; i < xs.rank() - 2; i++) {
      batch *= xs.dim(i);
    }
    return batch;
  }
}
