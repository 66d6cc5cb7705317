package dev.mosaic.spark.model;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.layers.KeyValues;
import java.util.List;

/**
 * Scores one task's test rows against a train-row cache that stays split over the tasks of a
 * barrier stage: this task holds shard {@code rank} of every block's row-attention keys/values.
 * As {@link CachedScorer}, except that each block's row attention is a {@link QueryRing} over the
 * tasks; the encoders, the cell attention, the MLPs and the decoder are per row. Every task must
 * call {@link #logits} once, also one with no test rows (its shard is still needed).
 */
public final class ShardedCacheScorer implements AutoCloseable {
  private final NanoTabPfnModel model;
  private final TableStats stats;
  private final int classes;
  private final List<KeyValues> shard;
  private final Communicator comm;
  private final Parallel parallel;

  /**
   * @param model local (no row strategy needed); not closed here
   * @param classes {@code max(yTrain) + 1}, or 0 for regression targets
   * @param shard per block, this task's train rows' keys/values {@code (columns, rows, 2E)}
   */
  public ShardedCacheScorer(NanoTabPfnModel model, TableStats stats, int classes,
      List<KeyValues> shard, Communicator comm, int threads) {
    List<NanoTabPfnBlock> blocks = model.blocks();
    if (blocks.size() != shard.size()) {
      throw new IllegalArgumentException("the cache shard holds " + shard.size()
          + " blocks, the model has " + blocks.size() + ": expected the same");
    }
    int e = model.shape().embedDim();
    for (KeyValues kv : shard) {
      if (kv.embedDim() != e || kv.batch() != stats.features() + 1) {
        throw new IllegalArgumentException("the cache shard's keys/values are " + kv.batch()
            + " columns x E " + kv.embedDim() + ", expected " + (stats.features() + 1) + " x "
            + e + " (features + target, the model's E)");
      }
    }
    this.model = model;
    this.stats = stats;
    this.classes = classes;
    this.shard = shard;
    this.comm = comm;
    this.parallel = new Parallel(threads, "mosaic-sharded-scorer");
  }

  /** Collective: the logits {@code (rows, outputs)} of this task's test rows. */
  public Tensor logits(Tensor xTest) {
    if (xTest.rank() != 2 || xTest.dim(1) != stats.features()) {
      throw new IllegalArgumentException("xTest must be [rows, " + stats.features()
          + "] (the train rows' features), got " + xTest);
    }
    int rows = xTest.dim(0);
    int cols = stats.features() + 1;
    int e = model.shape().embedDim();
    QueryRing ring = new QueryRing(comm, rows);
    long nTrain = stats.nTrain();
    Tensor table = rows == 0 ? null : model.embed(xTest, new float[0], nTrain, nTrain, stats);
    List<NanoTabPfnBlock> blocks = model.blocks();
    for (int i = 0; i < blocks.size(); i++) {
      NanoTabPfnBlock b = blocks.get(i);
      Tensor t = rows == 0 ? Tensor.zeros(0, cols, e) : b.cellStep(table);
      Tensor attended = ring.attend(b.rowAttention(), t, shard.get(i));
      if (rows > 0) {
        table = b.mlpStep(b.rowStep(t, attended), parallel);
      }
    }
    return rows == 0 ? Tensor.zeros(0, model.shape().outputs()) : model.decode(table, 0);
  }

  /** Softmax over the first {@code classes} logits of each row (class-id labels only). */
  public Tensor probabilities(Tensor logits) {
    if (classes < 1) {
      throw new IllegalStateException("the train labels are not class ids (regression):"
          + " there are no class probabilities");
    }
    return model.probabilities(logits, new float[] {classes - 1});
  }

  @Override
  public void close() {
    parallel.close();
  }
}
