package dev.mosaic.spark.jobs;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnBlock;
import dev.mosaic.spark.model.NanoTabPfnModel;
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
   * @param allRows true: logits of every row of the shard (train rows are decoded too);
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
          ? rowLogits(model, xShard, yShard, offset, nTrain, stats, threads)
          : model.shardLogits(xShard, yShard, offset, nTrain, stats);
      return new Result(logits, classes);
    }
  }

  /**
   * The decoder's logits for every row of a shard, train rows included: a train row's target
   * cell holds its own label, so its logits are an in-sample fit, not a prediction. The test
   * rows' logits equal {@link NanoTabPfnModel#shardLogits}.
   */
  static Tensor rowLogits(NanoTabPfnModel model, Tensor xShard, float[] yShard, long rowOffset,
      long nTrain, TableStats stats, int threads) {
    Tensor table = model.embed(xShard, yShard, rowOffset, nTrain, stats);
    try (Parallel parallel = new Parallel(threads, "mosaic-nanotabpfn-task")) {
      for (NanoTabPfnBlock b : model.blocks()) {
        table = b.forward(table, nTrain, parallel);
      }
    }
    return model.decode(table, 0);
  }
}
