package dev.mosaic.ml;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.ml.TrainingTable.TrainRow;
import dev.mosaic.spark.layers.KeyValues;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.TableStats;
import dev.mosaic.spark.model.TrainRowCache;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.IndexPartitioner;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.TaskEnv;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.util.SerializableConfiguration;
import scala.Tuple2;

/**
 * The fit's one barrier stage: the train rows, cut into contiguous shards (one task each), run
 * the model's blocks with the row attention as a ring over the tasks; each task returns its
 * rows' keys/values of every block's row attention, which the driver joins in row order into a
 * {@link TrainRowCache} — or, for a cache above the broadcast limit, writes as shard file r
 * ({@link CacheShards}) where it stays. The encoders' statistics were computed before the stage,
 * from all train rows ({@link TrainingTable}).
 */
final class TrainRowCacheFit {
  /** What one task returns: its rank and, per block, its rows' keys/values. */
  record ShardKeyValues(int rank, ArrayList<KeyValues> blocks) implements Serializable {}

  private TrainRowCacheFit() {}

  static TrainRowCache run(MosaicContext ctx, TrainingTable table,
      LinkedHashMap<String, Tensor> stateDict, int numHeads) {
    List<ShardKeyValues> out = stage(ctx, table, stateDict, numHeads, null, null);
    List<List<KeyValues>> shards = new ArrayList<>();
    for (ShardKeyValues s : out) {
      shards.add(s.blocks());
    }
    return TrainRowCache.of(table.stats, table.classes, shards);
  }

  /**
   * As {@link #run}, but each task writes its keys/values to shard file r under {@code dir}
   * ({@link CacheShards}) and returns nothing of them: the driver only writes the index.
   */
  static CacheShards runSharded(MosaicContext ctx, TrainingTable table,
      LinkedHashMap<String, Tensor> stateDict, int numHeads, int layers, int embedDim,
      String dir) {
    SerializableConfiguration conf =
        new SerializableConfiguration(ctx.jsc().hadoopConfiguration());
    stage(ctx, table, stateDict, numHeads, dir, conf);
    ShardLayout layout = ShardLayout.contiguous(table.count, ctx.spSize());
    int[] rows = new int[ctx.spSize()];
    for (int r = 0; r < rows.length; r++) {
      rows[r] = layout.size(r);
    }
    CacheShards shards = new CacheShards(dir, table.stats, table.classes, rows, layers, embedDim);
    shards.writeIndex(ctx.jsc().hadoopConfiguration());
    return shards;
  }

  /** The barrier stage; with a {@code dir} the tasks write their shards there. */
  private static List<ShardKeyValues> stage(MosaicContext ctx, TrainingTable table,
      LinkedHashMap<String, Tensor> stateDict, int numHeads, String dir,
      SerializableConfiguration conf) {
    int sp = ctx.spSize();
    ShardLayout layout = ShardLayout.contiguous(table.count, sp);
    long[] starts = new long[sp];
    for (int r = 0; r < sp; r++) {
      starts[r] = layout.segments(r).get(0).start();
    }
    JavaRDD<TrainRow> sharded = table.rows
        .mapToPair(row -> new Tuple2<>(shardOf(starts, row.index()), row))
        .partitionBy(new IndexPartitioner(sp))
        .values();
    TableStats stats = table.stats;
    // TableStats is not Serializable: ship its parts
    float[] mean = stats.mean();
    float[] scale = stats.scale();
    float labelMean = stats.labelMean();
    long nTrain = stats.nTrain();
    ShardFunction<TrainRow, ShardKeyValues> fn = (env, rows) -> {
      ShardKeyValues kv = shard(env, rows, layout,
          new TableStats(mean, scale, labelMean, nTrain), stateDict, numHeads);
      if (dir == null) {
        return List.of(kv).iterator();
      }
      CacheShards.writeShard(conf.value(), dir, env.rank(), kv.blocks());
      return List.of(new ShardKeyValues(env.rank(), new ArrayList<>())).iterator();
    };
    List<ShardKeyValues> out = new ArrayList<>(BarrierRunner.collect(sharded, fn, ctx.config(),
        ctx.config().device(), ShardKeyValues.class));
    out.sort(Comparator.comparingInt(ShardKeyValues::rank));
    if (out.size() != sp) { // one record per task: a bug, not bad input
      throw new IllegalStateException("the fit's stage returned " + out.size() + " shards,"
          + " expected " + sp);
    }
    return out;
  }

  private static ShardKeyValues shard(TaskEnv env, Iterator<TrainRow> input, ShardLayout layout,
      TableStats stats, LinkedHashMap<String, Tensor> stateDict, int numHeads) {
    List<TrainRow> rows = new ArrayList<>();
    input.forEachRemaining(rows::add);
    rows.sort(Comparator.comparingLong(TrainRow::index));
    ShardLayout.Segment seg = layout.segments(env.rank()).get(0);
    if (rows.size() != seg.length()) { // the driver numbered the rows: a bug, not bad input
      throw new IllegalStateException("shard " + env.rank() + " got " + rows.size()
          + " train rows, expected " + seg.length());
    }
    int n = rows.size();
    int f = stats.features();
    float[] x = new float[n * f];
    float[] y = new float[n];
    for (int i = 0; i < n; i++) {
      System.arraycopy(rows.get(i).x(), 0, x, i * f, f);
      y[i] = rows.get(i).y();
    }
    int threads = env.config().taskThreads();
    try (AttentionKernel kernel = env.kernel(threads);
        NanoTabPfnModel model = NanoTabPfnModel.fromStateDict("the fitted model", stateDict,
            numHeads, new RingStrategy(env.comm(), layout, kernel), threads)) {
      return new ShardKeyValues(env.rank(), new ArrayList<>(TrainRowCache.shardKeyValues(model,
          Tensor.of(x, n, f), y, seg.start(), stats, threads)));
    }
  }

  static int shardOf(long[] starts, long index) {
    int lo = 0;
    int hi = starts.length - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= index) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }
}
