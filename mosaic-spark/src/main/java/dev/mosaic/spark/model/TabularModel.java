package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.Strategy;

/**
 * The nanoTabPFN model sized by a {@link TabularConfig}, with seeded untrained weights
 * ({@link TabularConfig#seededWeights}), run on a whole table in this JVM: logits for every row,
 * train rows included ({@link NanoTabPfnRows}). Kept for callers written against the earlier
 * seeded toy model; new code uses {@link NanoTabPfnModel} (one JVM) or
 * {@code jobs.NanoTabPfnJob} (sharded over Spark).
 */
public final class TabularModel implements AutoCloseable {
  private final TabularConfig cfg;
  private final NanoTabPfnModel model;
  private final int threads;

  /**
   * @param rowStrategy the row attention's strategy (not closed here); null for local. The
   *     table statistics come from the rows given to {@link #forward}, so a strategy that shards
   *     the rows needs {@code jobs.NanoTabPfnJob}, which reduces them across tasks.
   */
  public TabularModel(TabularConfig cfg, Strategy rowStrategy, int threads) {
    this.cfg = cfg;
    this.threads = threads;
    this.model = NanoTabPfnModel.fromStateDict("seeded weights of " + cfg, cfg.seededWeights(),
        cfg.heads(), rowStrategy, threads);
  }

  public TabularConfig config() {
    return cfg;
  }

  /**
   * Logits {@code (rows, classes)} for every row of a whole table.
   *
   * @param table {@code (rows, features)}, raw features (standardised with the train rows' stats)
   * @param labels class index per row; read only where {@code row < nTrain}
   * @param rowOffset must be 0: the table is whole
   * @param nTrain the first {@code nTrain} rows are the train rows
   */
  public Tensor forward(Tensor table, int[] labels, long rowOffset, long nTrain) {
    if (table.rank() != 2 || table.dim(1) != cfg.features()) {
      throw new IllegalArgumentException("table must be (rows, " + cfg.features() + "), got "
          + table);
    }
    if (rowOffset != 0) {
      throw new IllegalArgumentException("rowOffset must be 0 (a whole table), got " + rowOffset
          + ": a shard needs statistics from all train rows (jobs.NanoTabPfnJob)");
    }
    if (nTrain < 1 || nTrain > Math.min(table.dim(0), labels.length)) {
      throw new IllegalArgumentException("nTrain must be in 1.." + Math.min(table.dim(0),
          labels.length) + " (rows with labels), got " + nTrain);
    }
    float[] yTrain = new float[(int) nTrain];
    for (int r = 0; r < nTrain; r++) {
      yTrain[r] = labels[r];
    }
    return NanoTabPfnRows.logits(model, table, yTrain, threads);
  }

  /** The predicted class of each row: the arg-max of its logits. */
  public static int[] argMax(Tensor logits) {
    int rows = logits.dim(0);
    int c = logits.dim(1);
    int[] out = new int[rows];
    float[] d = logits.data();
    for (int r = 0; r < rows; r++) {
      int best = 0;
      for (int j = 1; j < c; j++) {
        if (d[r * c + j] > d[r * c + best]) {
          best = j;
        }
      }
      out[r] = best;
    }
    return out;
  }

  @Override
  public void close() {
    model.close();
  }
}
