package dev.mosaic.spark.jobs;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.model.TabularModel;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.IndexPartitioner;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.TaskEnv;
import dev.mosaic.spark.runner.TaskMemory;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.CollectionAccumulator;
import scala.Tuple2;

/**
 * The tabular model as a Spark job: rows of a table (row id, {@code array<float>} features, label)
 * are cut into {@code spSize} contiguous shards of row ids, one barrier task each; every task runs
 * the whole model on its rows, with the row attention as a ring over the tasks (rows attend to the
 * training rows, ids {@code < nTrain}). Output: one row per input row with the predicted class and
 * class probabilities (row order is not kept: sort by row_id if it matters).
 */
public final class TabularJob {
  /** Input columns. */
  public static final StructType INPUT = new StructType()
      .add("row_id", DataTypes.LongType, false)
      .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false)
      .add("label", DataTypes.IntegerType, false);

  /** Output columns. */
  public static final StructType OUTPUT = new StructType()
      .add("row_id", DataTypes.LongType, false)
      .add("label", DataTypes.IntegerType, false)
      .add("is_train", DataTypes.BooleanType, false)
      .add("prediction", DataTypes.IntegerType, false)
      .add("probabilities", DataTypes.createArrayType(DataTypes.FloatType, false), false);

  /** What one task did, for the report. */
  public record TaskReport(int rank, int rows, long firstRow, double seconds, long allocatedBytes,
      long executorHeapPeakBytes, String host) implements Serializable {}

  private TabularJob() {}

  /** A synthetic table generated in parallel by Spark, identical to {@link SyntheticTable}. */
  public static Dataset<Row> synthetic(SparkSession spark, long rows, int features, int classes,
      long seed, int partitions) {
    SyntheticTable.Generator gen = new SyntheticTable.Generator(features, classes, seed);
    JavaRDD<Row> rdd = spark.range(0, rows, 1, partitions).javaRDD().map(id -> {
      float[] f = new float[features];
      int label = gen.row(id, f, 0);
      return RowFactory.create(id, f, label);
    });
    return spark.createDataFrame(rdd, INPUT);
  }

  /**
   * Runs the model over {@code table} (schema {@link #INPUT}, row ids 0..n−1) with the context's
   * shard count. Lazy: the barrier stage runs when the result is written or collected.
   */
  public static Dataset<Row> predict(MosaicContext ctx, Dataset<Row> table, long rowCount,
      long nTrain, TabularConfig cfg, CollectionAccumulator<TaskReport> reports) {
    int sp = ctx.spSize();
    ShardLayout layout = ShardLayout.contiguous(rowCount, sp);
    long[] starts = new long[sp];
    for (int r = 0; r < sp; r++) {
      starts[r] = layout.segments(r).get(0).start();
    }
    JavaRDD<Row> sharded = table.javaRDD()
        .mapToPair(row -> new Tuple2<>(shardOf(starts, row.getLong(0)), row))
        .partitionBy(new IndexPartitioner(sp))
        .values();
    ShardFunction<Row, Row> fn = (env, rows) -> runShard(env, rows, layout, nTrain, cfg, reports);
    // The shuffle after the barrier stage makes it a shuffle-map stage, which Spark re-runs as a
    // whole when a task fails transiently (a barrier stage feeding the write directly would not be
    // retried). A failure that would recur — a row with the wrong number of features, row ids
    // that are not 0..n-1 — cancels the job at once with the task's message (BarrierRunner).
    JavaRDD<Row> out = BarrierRunner.run(sharded, fn, ctx.config(), Row.class).repartition(sp);
    return ctx.spark().createDataFrame(out, OUTPUT);
  }

  static int shardOf(long[] starts, long id) {
    int lo = 0;
    int hi = starts.length - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= id) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }

  private static Iterator<Row> runShard(TaskEnv env, Iterator<Row> input, ShardLayout layout,
      long nTrain, TabularConfig cfg, CollectionAccumulator<TaskReport> reports) {
    long t0 = System.nanoTime();
    TaskMemory mem = new TaskMemory();
    List<Row> rows = new ArrayList<>();
    input.forEachRemaining(rows::add);
    rows.sort(Comparator.comparingLong(r -> r.getLong(0)));
    ShardLayout.Segment seg = layout.segments(env.rank()).get(0);
    if (rows.size() != seg.length()) {
      throw new IllegalStateException("shard " + env.rank() + " expected rows " + seg.start() + ".."
          + (seg.start() + seg.length() - 1) + " but got " + rows.size() + " rows: row ids must be"
          + " 0..n-1 without gaps or duplicates");
    }
    int n = rows.size();
    int f = cfg.features();
    float[] values = new float[n * f];
    int[] labels = new int[n];
    for (int i = 0; i < n; i++) {
      Row r = rows.get(i);
      if (r.getLong(0) != seg.start() + i) {
        throw new IllegalStateException("shard " + env.rank() + " row " + i + " has id "
            + r.getLong(0) + ", expected " + (seg.start() + i) + " (duplicate or missing row id)");
      }
      List<Float> feats = r.getList(1);
      if (feats.size() != f) {
        throw new IllegalArgumentException("row " + r.getLong(0) + " has " + feats.size()
            + " features, expected " + f);
      }
      for (int j = 0; j < f; j++) {
        values[i * f + j] = feats.get(j);
      }
      labels[i] = r.getInt(2);
    }
    int threads = env.config().taskThreads();
    Tensor logits;
    try (AttentionKernel kernel = env.kernel(threads);
        TabularModel model = new TabularModel(cfg,
            new RingStrategy(env.comm(), layout, kernel), threads)) {
      logits = model.forward(Tensor.of(values, n, f), labels, seg.start(), nTrain);
    }
    int[] pred = TabularModel.argMax(logits);
    List<Row> out = new ArrayList<>(n);
    int c = cfg.classes();
    for (int i = 0; i < n; i++) {
      long id = seg.start() + i;
      out.add(RowFactory.create(id, labels[i], id < nTrain, pred[i],
          softmax(logits.data(), i * c, c)));
    }
    if (reports != null) {
      reports.add(new TaskReport(env.rank(), n, seg.start(), (System.nanoTime() - t0) / 1e9,
          mem.allocatedSinceStart(), TaskMemory.jvmHeapPeak(), env.host()));
    }
    return out.iterator();
  }

  public static float[] softmax(float[] logits, int off, int len) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < len; i++) {
      max = Math.max(max, logits[off + i]);
    }
    float[] p = new float[len];
    double sum = 0;
    for (int i = 0; i < len; i++) {
      p[i] = (float) Math.exp(logits[off + i] - max);
      sum += p[i];
    }
    for (int i = 0; i < len; i++) {
      p[i] /= (float) sum;
    }
    return p;
  }
}
