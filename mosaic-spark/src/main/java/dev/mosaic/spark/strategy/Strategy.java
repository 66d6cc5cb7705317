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

  /** A short name for logs: the backend and its shape. */
  String name();

  @Override
  default void close() {}
}
