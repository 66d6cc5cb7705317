package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;

/**
 * How one attention call is spread over ranks. Each rank passes its own shard of the sequence:
 * {@code q, k, v} shaped {@code (batch, seqLocal, heads, headDim)}; {@code out} receives the
 * attention output for this rank's queries (same shape as {@code q}). {@code mask} is stated in
 * global sequence positions (offsets 0); the strategy knows where its shards sit.
 */
public interface Strategy extends AutoCloseable {

  void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out);

  /**
   * Like {@link #attend(BlockView, BlockView, BlockView, float, AttentionMask, BlockView)}, and
   * also writes the log-sum-exp of this rank's queries, {@code [batch][seqLocal][heads]}: what
   * {@link #attendBackward} needs. Strategies without a backward refuse it.
   */
  default void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    throw BackwardSupport.missing(name());
  }

  /**
   * Gradients of {@code sum(out·dOut)} with respect to this rank's shards of q, k and v, after a
   * forward {@link #attend(BlockView, BlockView, BlockView, float, AttentionMask, BlockView,
   * float[]) attend} with the same arguments wrote {@code out} and {@code lse}. Each rank gets the
   * gradient for its own K/V shard, summed over every rank's queries. The arrays are overwritten.
   */
  default void attendBackward(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse,
      BlockView dOut, float scale, AttentionMask mask, BlockView dq, BlockView dk, BlockView dv) {
    throw BackwardSupport.missing(name());
  }

  /** A short name for logs: the backend and its shape. */
  String name();

  @Override
  default void close() {}
}
