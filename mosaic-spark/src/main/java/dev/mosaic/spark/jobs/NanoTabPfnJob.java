package dev.mosaic.spark.jobs;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnRows;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.IndexPartitioner;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.ShardedInputCheck;
import dev.mosaic.spark.runner.TaskEnv;
import dev.mosaic.spark.runner.TaskMemory;
import dev.mosaic.spark.strategy.ShardLayout;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.CollectionAccumulator;
import scala.Tuple2;

/**
 * The nanoTabPFN model over Spark: the rows of a table are cut into contiguous shards of row ids
 * (uneven sizes allowed), one barrier task each. Every task reduces the table statistics over all
 * tasks' train rows, then runs the model on its rows with the row attention as a ring over the
 * tasks; only the statistics and the row attention talk to other tasks. Two ways in:
 * {@link #testLogits} for a table in driver memory (what {@code bin/mosaic predict --backend ring}
 * calls), and {@link #predict} for a DataFrame (the main job, {@code bin/mosaic demo}).
 */
public final class NanoTabPfnJob {
  /** Input columns of {@link #predict}: row ids 0..rows−1, the train rows first. */
  public static final StructType INPUT = new StructType()
      .add("row_id", DataTypes.LongType, false)
      .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false)
      .add("label", DataTypes.IntegerType, false);

  /**
   * Output columns of {@link #predict}: one row per input row. Test rows get the model's
   * prediction; train rows are decoded too, but their target cell held their own label, so theirs
   * is an in-sample fit ({@code is_train} tells them apart).
   */
  public static final StructType OUTPUT = new StructType()
      .add("row_id", DataTypes.LongType, false)
      .add("label", DataTypes.IntegerType, false)
      .add("is_train", DataTypes.BooleanType, false)
      .add("prediction", DataTypes.IntegerType, false)
      .add("probabilities", DataTypes.createArrayType(DataTypes.FloatType, false), false);

  /**
   * The size of a {@link #predict} table.
   *
   * @param rows row ids are {@code 0..rows−1}
   * @param nTrain the rows with ids {@code < nTrain} are the train rows
   * @param features the length of every row's features
   */
  public record TableSize(long rows, long nTrain, int features) implements Serializable {
    public TableSize {
      if (nTrain < 1 || nTrain > rows) {
        throw new IllegalArgumentException("nTrain must be in 1.." + rows + " (the rows), got "
            + nTrain);
      }
      if (features < 1) {
        throw new IllegalArgumentException("features must be >= 1, got " + features);
      }
    }
  }

  private NanoTabPfnJob() {}

  /**
   * The test rows' logits {@code (rows − nTrain, outputs)}, in row order, with the rows of
   * {@code x} in {@code ctx.spSize()} near-equal contiguous shards; equal to
   * {@code NanoTabPfnModel.logits(x, yTrain)} in one JVM to fp32 rounding.
   *
   * @param stateDict nanoTabPFN's tensors under PyTorch's names (checked here, before the stage)
   * @param x {@code (rows, features)}, the train rows first
   * @param yTrain one label per train row
   */
  public static Tensor testLogits(MosaicContext ctx, Map<String, Tensor> stateDict, int numHeads,
      Tensor x, float[] yTrain) {
    if (x.rank() != 2) {
      throw new IllegalArgumentException("x must be [rows, features], got " + x);
    }
    ShardedInputCheck.requireShardable(x.dim(0), "the rows of x", ctx.spSize(),
        "spSize " + ctx.spSize());
    return testLogits(ctx, stateDict, numHeads, x, yTrain,
        ShardLayout.contiguous(x.dim(0), ctx.spSize()));
  }

  /** As {@link #testLogits(MosaicContext, Map, int, Tensor, float[])} with given shards. */
  public static Tensor testLogits(MosaicContext ctx, Map<String, Tensor> stateDict, int numHeads,
      Tensor x, float[] yTrain, ShardLayout layout) {
    NanoTabPfnShape shape = NanoTabPfnCheckpoint.check("state dict", stateDict, numHeads);
    checkTable(x, yTrain, layout);
    int features = x.dim(1);
    List<TableShard> shards = new ArrayList<>();
    for (int r = 0; r < layout.parts(); r++) {
      ShardLayout.Segment s = layout.segments(r).get(0);
      int from = (int) s.start();
      int to = from + s.length();
      shards.add(new TableShard(
          Arrays.copyOfRange(x.data(), from * features, to * features), s.length(), features,
          Arrays.copyOfRange(yTrain, Math.min(from, yTrain.length),
              Math.min(to, yTrain.length))));
    }
    long nTrain = yTrain.length;
    Broadcast<Map<String, Tensor>> weights =
        ctx.jsc().broadcast(new LinkedHashMap<>(stateDict));
    try {
      ShardFunction<TableShard, float[]> fn = (env, in) -> {
        TableShard shard = in.next();
        Tensor logits = NanoTabPfnTask.run(env, layout, weights.value(), numHeads,
            Tensor.of(shard.x(), shard.rows(), shard.features()), shard.y(), nTrain, false)
            .logits();
        return List.of(logits.data()).iterator();
      };
      List<float[]> perRank = named(ctx.spark().sparkContext(),
          "nanoTabPFN test logits: ring over " + layout.parts() + " barrier tasks",
          () -> BarrierRunner.collect(ctx.jsc().parallelize(shards, layout.parts()), fn,
              ctx.config(), ctx.config().device(), float[].class));
      int tests = x.dim(0) - yTrain.length;
      float[] out = new float[tests * shape.outputs()];
      int pos = 0;
      for (float[] part : perRank) {
        System.arraycopy(part, 0, out, pos, part.length);
        pos += part.length;
      }
      return Tensor.of(out, tests, shape.outputs());
    } finally {
      weights.destroy();
    }
  }

  /** One task's rows, shipped from the driver. */
  private record TableShard(float[] x, int rows, int features, float[] y)
      implements Serializable {}

  private static void checkTable(Tensor x, float[] yTrain, ShardLayout layout) {
    if (x.rank() != 2 || x.dim(1) < 1) {
      throw new IllegalArgumentException("x must be [rows, features] with features >= 1, got "
          + x);
    }
    if (yTrain.length < 1 || yTrain.length > x.dim(0)) {
      throw new IllegalArgumentException("yTrain has " + yTrain.length + " labels: expected 1.."
          + x.dim(0) + " (one per train row; x has " + x.dim(0) + " rows)");
    }
    if (layout.total() != x.dim(0)) {
      throw new IllegalArgumentException("layout covers " + layout.total() + " rows, x has "
          + x.dim(0));
    }
    for (int r = 0; r < layout.parts(); r++) {
      if (layout.segments(r).size() != 1 || layout.size(r) < 1) {
        throw new IllegalArgumentException("shard " + r + " must be one non-empty contiguous"
            + " slice of rows, got " + layout.segments(r));
      }
    }
    ShardedInputCheck.requireFinite("x", x);
  }

  /**
   * Runs the model over {@code table} (schema {@link #INPUT}) with the context's shard count.
   * Lazy: the barrier stage runs when the result is written or collected. Row order is not kept:
   * sort by row_id if it matters. Probabilities are the softmax over the first
   * {@code max(train label) + 1} logits, the prediction their arg-max.
   *
   * @param stateDict nanoTabPFN's tensors (checked here); shipped to the tasks as a broadcast
   * @param reports receives one report per task, or null
   */
  public static Dataset<Row> predict(MosaicContext ctx, Dataset<Row> table, TableSize size,
      Map<String, Tensor> stateDict, int numHeads,
      CollectionAccumulator<TabularJob.TaskReport> reports) {
    NanoTabPfnCheckpoint.check("state dict", stateDict, numHeads);
    int sp = ctx.spSize();
    ShardedInputCheck.requireShardable(size.rows(), "the table's rows", sp, "spSize " + sp);
    ShardLayout layout = ShardLayout.contiguous(size.rows(), sp);
    long[] starts = new long[sp];
    for (int r = 0; r < sp; r++) {
      starts[r] = layout.segments(r).get(0).start();
    }
    SparkContext sc = ctx.spark().sparkContext();
    Broadcast<Map<String, Tensor>> weights =
        ctx.jsc().broadcast(new LinkedHashMap<>(stateDict));
    JavaRDD<Row> sharded = named(sc, "nanoTabPFN: shard rows by id over " + sp + " tasks",
        () -> table.javaRDD()
            .mapToPair(row -> new Tuple2<>(shardOf(starts, row.getLong(0)), row))
            .partitionBy(new IndexPartitioner(sp))
            .values());
    ShardFunction<Row, Row> fn = (env, rows) ->
        runShard(env, rows, layout, size, weights.value(), numHeads, reports);
    // The shuffle after the barrier stage makes it a shuffle-map stage, which Spark re-runs as a
    // whole when a task fails transiently (a barrier stage feeding the write directly would not be
    // retried). A failure that would recur — a row with the wrong number of features, row ids
    // that are not 0..n-1 — cancels the job at once with the task's message (BarrierRunner).
    JavaRDD<Row> out = named(sc, "nanoTabPFN: model, row attention as a ring over " + sp
        + " barrier tasks", () -> BarrierRunner.run(sharded, fn, ctx.config(), Row.class)
            .repartition(sp));
    return ctx.spark().createDataFrame(out, OUTPUT);
  }

  /**
   * What {@link #predict} computes for every row, run unsharded in this JVM: the logits
   * {@code (rows, outputs)} of all rows of {@code x}, train rows included (for checks of a
   * sharded run).
   */
  public static Tensor localRowLogits(Map<String, Tensor> stateDict, int numHeads, Tensor x,
      float[] yTrain, int threads) {
    try (NanoTabPfnModel model =
        NanoTabPfnModel.fromStateDict("state dict", stateDict, numHeads, null, threads)) {
      return NanoTabPfnRows.logits(model, x, yTrain, threads);
    }
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
      TableSize size, Map<String, Tensor> stateDict, int numHeads,
      CollectionAccumulator<TabularJob.TaskReport> reports) {
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
    int f = size.features();
    float[] values = new float[n * f];
    float[] labels = new float[n];
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
    NanoTabPfnTask.Result result = NanoTabPfnTask.run(env, layout, stateDict, numHeads,
        Tensor.of(values, n, f), labels, size.nTrain(), true);
    int outputs = result.logits().dim(1);
    int classes = result.classes();
    if (classes < 1 || classes > outputs) {
      throw new IllegalArgumentException("the train labels must be class ids 0.." + (outputs - 1)
          + " (the model has " + outputs + " outputs), but the largest is " + (classes - 1));
    }
    float[] logits = result.logits().data();
    List<Row> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      long id = seg.start() + i;
      out.add(RowFactory.create(id, (int) labels[i], id < size.nTrain(),
          argMax(logits, i * outputs, classes), TabularJob.softmax(logits, i * outputs, classes)));
    }
    if (reports != null) {
      reports.add(new TabularJob.TaskReport(env.rank(), n, seg.start(),
          (System.nanoTime() - t0) / 1e9, mem.allocatedSinceStart(), TaskMemory.jvmHeapPeak(),
          env.host()));
    }
    return out.iterator();
  }

  /** The index of the largest of {@code v[off .. off + len)}, relative to {@code off}. */
  static int argMax(float[] v, int off, int len) {
    int best = 0;
    for (int j = 1; j < len; j++) {
      if (v[off + j] > v[off + best]) {
        best = j;
      }
    }
    return best;
  }

  /**
   * Runs {@code create} with {@code name} as Spark's call site, so the stages whose last RDD it
   * creates carry that name in the UI and in progress reports (instead of one shared name); the
   * caller's call site is restored after.
   */
  static <T> T named(SparkContext sc, String name, Supplier<T> create) {
    String shortForm = sc.getLocalProperty("callSite.short");
    String longForm = sc.getLocalProperty("callSite.long");
    sc.setCallSite(name);
    try {
      return create.get();
    } finally {
      sc.setLocalProperty("callSite.short", shortForm);
      sc.setLocalProperty("callSite.long", longForm);
    }
  }
}
