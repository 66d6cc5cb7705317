package dev.mosaic.spark.jobs;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnRows;
import dev.mosaic.spark.model.ShardedTableStats;
import dev.mosaic.spark.model.TableStats;
import dev.mosaic.spark.runner.TaskEnv;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import java.util.Map;

/**
 * What one barrier task of {@link NanoTabPfnJob} computes on its shard of rows: the table
 * statistics reduced over all tasks ({@link ShardedTableStats}), then the nanoTabPFN model with
 * its row attention as a ring over the tasks ({@link RingStrategy}).
 */
final class NanoTabPfnTask {
  private NanoTabPfnTask() {}

  /** The logits of one shard and how many classes the train labels name. */
  record Result(Tensor logits, int classes) {}

  /**
   * Collective over the stage's tasks.
   *
   * @param xShard the rows {@code layout.segments(rank)} of the table
   * @param yShard their labels; read only for the train rows (global ids {@code < nTrain})
   * @param allRows true: logits of every row of the shard ({@link NanoTabPfnRows});
   *     false: of its test rows only, as nanoTabPFN's forward gives them
   */
  static Result run(TaskEnv env, ShardLayout layout, Map<String, Tensor> stateDict, int numHeads,
      Tensor xShard, float[] yShard, long nTrain, boolean allRows) {
    long offset = layout.segments(env.rank()).get(0).start();
    TableStats stats = ShardedTableStats.reduce(env.comm(), xShard, yShard, offset, nTrain);
    float maxLabel = ShardedTableStats.maxTrainLabel(env.comm(), yShard, xShard.dim(0), offset,
        nTrain);
    int classes = maxLabel >= 0 && maxLabel == Math.rint(maxLabel) ? (int) maxLabel + 1 : 0;
    int threads = env.config().taskThreads();
    try (AttentionKernel kernel = env.kernel(threads);
        NanoTabPfnModel model = NanoTabPfnModel.fromStateDict("state dict", stateDict, numHeads,
            new RingStrategy(env.comm(), layout, kernel), threads)) {
      Tensor logits = allRows
          ? NanoTabPfnRows.logits(model, xShard, yShard, offset, nTrain, stats, threads)
          : model.shardLogits(xShard, yShard, offset, nTrain, stats);
      return new Result(logits, classes);
    }
  }
}
