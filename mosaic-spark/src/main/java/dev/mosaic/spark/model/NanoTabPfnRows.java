package dev.mosaic.spark.model;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;

/**
 * The decoder's logits for every row of a table or shard, train rows included. nanoTabPFN's
 * forward decodes only the test rows; a job that writes one output row per input row (the main
 * job, {@code bin/mosaic demo}) decodes the train rows too. A train row's target cell holds its
 * own label, so its logits are an in-sample fit, not a prediction. The test rows' logits equal
 * {@link NanoTabPfnModel#shardLogits}.
 */
public final class NanoTabPfnRows {
  private NanoTabPfnRows() {}

  /**
   * Logits {@code (xShard.rows, outputs)} of the rows {@code rowOffset ..} of a table whose first
   * {@code nTrain} rows are train rows; the row attention runs through the model's row strategy.
   */
  public static Tensor logits(NanoTabPfnModel model, Tensor xShard, float[] yShard,
      long rowOffset, long nTrain, TableStats stats, int threads) {
    Tensor table = model.embed(xShard, yShard, rowOffset, nTrain, stats);
    try (Parallel parallel = new Parallel(threads, "mosaic-nanotabpfn-rows")) {
      for (NanoTabPfnBlock b : model.blocks()) {
        table = b.forward(table, nTrain, parallel);
      }
    }
    return model.decode(table, 0);
  }

  /** {@link #logits} of a whole table in this JVM: {@code x}'s first rows are the train rows. */
  public static Tensor logits(NanoTabPfnModel model, Tensor x, float[] yTrain, int threads) {
    return logits(model, x, yTrain, 0, yTrain.length, TableStats.ofTrainRows(x, yTrain), threads);
  }
}
