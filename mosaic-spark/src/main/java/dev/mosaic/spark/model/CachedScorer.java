package dev.mosaic.spark.model;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import java.util.List;

/**
 * Scores test rows of a nanoTabPFN model against a {@link TrainRowCache}: the test rows are
 * encoded with the cached {@link TableStats}, and in each block their row attention attends to
 * the cached train-row keys/values instead of recomputing the train rows. Test rows do not see
 * each other, so any batch of them (one row, a partition, a streaming micro-batch) gives the same
 * numbers as {@link NanoTabPfnModel#logits} over the whole table.
 */
public final class CachedScorer implements AutoCloseable {
  private final NanoTabPfnModel model;
  private final TrainRowCache cache;
  private final Parallel parallel;

  /** @param model local (no row strategy needed); not closed here */
  public CachedScorer(NanoTabPfnModel model, TrainRowCache cache, int threads) {
    List<NanoTabPfnBlock> blocks = model.blocks();
    if (blocks.size() != cache.blocks().size()) {
      throw new IllegalArgumentException("the cache holds " + cache.blocks().size()
          + " blocks, the model has " + blocks.size() + ": expected the same");
    }
    int e = model.shape().embedDim();
    if (!cache.blocks().isEmpty() && cache.blocks().get(0).embedDim() != e) {
      throw new IllegalArgumentException("the cache's embedDim is "
          + cache.blocks().get(0).embedDim() + ", the model's " + e + ": expected the same");
    }
    this.model = model;
    this.cache = cache;
    this.parallel = new Parallel(threads, "mosaic-cached-scorer");
  }

  public TrainRowCache cache() {
    return cache;
  }

  /** The logits {@code (rows, outputs)} of test rows {@code xTest} {@code (rows, features)}. */
  public Tensor logits(Tensor xTest) {
    if (xTest.rank() != 2 || xTest.dim(1) != cache.features()) {
      throw new IllegalArgumentException("xTest must be [rows, " + cache.features()
          + "] (the train rows' features), got " + xTest);
    }
    if (xTest.dim(0) == 0) {
      return Tensor.zeros(0, model.shape().outputs()); // an empty partition or micro-batch
    }
    long nTrain = cache.nTrain();
    Tensor table = model.embed(xTest, new float[0], nTrain, nTrain, cache.stats());
    List<NanoTabPfnBlock> blocks = model.blocks();
    for (int i = 0; i < blocks.size(); i++) {
      NanoTabPfnBlock b = blocks.get(i);
      Tensor t = b.cellStep(table);
      t = b.rowStep(t, b.rowAttention().attend(t, cache.blocks().get(i)));
      table = b.mlpStep(t, parallel);
    }
    return model.decode(table, 0);
  }

  /** Softmax over the first {@code classes} logits of each row (class-id labels only). */
  public Tensor probabilities(Tensor logits) {
    if (cache.classes() < 1) {
      throw new IllegalStateException("the train labels are not class ids (regression):"
          + " there are no class probabilities");
    }
    float[] classIds = new float[] {cache.classes() - 1};
    return model.probabilities(logits, classIds);
  }

  @Override
  public void close() {
    parallel.close();
  }
}
