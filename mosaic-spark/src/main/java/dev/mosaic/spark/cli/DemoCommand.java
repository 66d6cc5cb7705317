package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.datasets.DatasetComparison;
import dev.mosaic.spark.jobs.NanoTabPfnJob;
import dev.mosaic.spark.jobs.ParquetOutput;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedInputCheck;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.runner.StageProgress;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.util.CollectionAccumulator;

/**
 * {@code mosaic demo}: the main job. (a) Evaluates the nanoTabPFN model (seeded untrained weights,
 * or a checkpoint with {@code --model}) on the bundled public datasets next to MLlib's baselines
 * ({@link DatasetComparison}). (b) Generates a synthetic table with Spark, runs the model
 * ({@link NanoTabPfnJob}) with its row attention as a ring over {@code --sp} barrier tasks,
 * writes the predictions as Parquet, prints a report, and checks a sample of rows against the
 * same model run unsharded in this JVM.
 */
final class DemoCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic demo [--rows 20000] [--features 8] [--classes 3] [--train-fraction 0.8]",
      "                   [--sp 2] [--master URL] [--output out/demo-predictions.parquet]",
      "                   [--threads N] [--check-rows 200] [--no-check] [--no-datasets]",
      "                   [--model FILE.safetensors [--num-heads H]]",
      "                   " + DeviceFlags.USAGE,
      "  (a) Scores the nanoTabPFN model (seeded untrained weights, or the checkpoint --model) on",
      "  the bundled datasets (iris, wine, breast cancer; stratified 75/25 split) next to Spark",
      "  MLlib's LogisticRegression and RandomForestClassifier: accuracy and ROC AUC",
      "  (--no-datasets skips this). (b) Runs the model (attention across the cells of a row,",
      "  attention across rows as a ring over --sp Spark barrier tasks, MLP) over a synthetic",
      "  table, writes predictions as Parquet, prints a report and checks a sample against the",
      "  unsharded model. Default master: local[max(cores, --sp)].");

  private DemoCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("demo", args, Set.of("rows", "features", "classes", "train-fraction",
        "sp", "master", "output", "threads", "check-rows", "device", "gpu-dtype", "comm", "model",
        "num-heads"),
        Set.of("no-check", "no-datasets"));
    DeviceFlags devices = DeviceFlags.parse(f);
    int rows = f.positive("rows", 20_000);
    int features = f.positive("features", 8);
    int classes = f.positive("classes", 3);
    double trainFraction;
    try {
      trainFraction = Double.parseDouble(f.string("train-fraction", "0.8"));
    } catch (NumberFormatException e) {
      throw new UserError("--train-fraction expects a number, got '"
          + f.string("train-fraction", "") + "'");
    }
    if (!(trainFraction > 0 && trainFraction < 1)) {
      throw new UserError("--train-fraction must be in (0, 1), got " + trainFraction);
    }
    int sp = f.positive("sp", 2);
    ShardedInputCheck.requireShardable(rows, "the table's rows (--rows)", sp, "--sp " + sp);
    String master = f.string("master", SparkSessions.defaultMaster(sp));
    String output = f.string("output", "out/demo-predictions.parquet");
    int checkRows = f.positive("check-rows", 200);
    long nTrain = Math.round(rows * trainFraction);
    long seed = 42;
    Weights weights = weights(f, features, classes);

    Map<String, String> conf = new HashMap<>();
    devices.putInto(conf);
    if (f.has("threads")) {
      conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
    }
    long t0 = System.nanoTime();
    SparkSession spark = SparkSessions.getOrCreate(master, "mosaic-demo", conf);
    StageProgress progress = new StageProgress(out);
    try {
      double startup = (System.nanoTime() - t0) / 1e9;
      MosaicContext ctx = MosaicContext.init(spark, sp);
      out.printf("Mosaic demo: %d rows x %d features (%d train), %d classes, %d shards on %s%n",
          rows, features, nTrain, classes, sp, spark.sparkContext().master());
      out.printf("  model: nanoTabPFN, %s%n", weights.description());
      DatasetsPart datasets =
          f.has("no-datasets") ? null : datasets(spark, ctx, weights, seed, out);
      // Per-stage progress for part (b) only: the MLlib baselines run hundreds of tiny jobs.
      spark.sparkContext().addSparkListener(progress);
      spark.sparkContext().setJobGroup("mosaic-demo", "Mosaic demo: nanoTabPFN, ring over "
          + sp + " tasks", false);
      CollectionAccumulator<TabularJob.TaskReport> reports =
          spark.sparkContext().collectionAccumulator("mosaic task reports");
      Dataset<Row> table = TabularJob.synthetic(spark, rows, features, classes, seed, sp);
      long t1 = System.nanoTime();
      // Stage names in the Spark UI and in the progress lines come from the call site: the job
      // names its shard and model stages, the write is named here.
      Dataset<Row> predictions = NanoTabPfnJob.predict(ctx, table,
          new NanoTabPfnJob.TableSize(rows, nTrain, features), weights.stateDict(),
          weights.numHeads(), reports);
      spark.sparkContext().setCallSite("mosaic demo: write predictions as Parquet");
      // Replaces the output only once the write succeeded: never a partial result.
      ParquetOutput.write(predictions, output);
      double jobSecs = (System.nanoTime() - t1) / 1e9;

      spark.sparkContext().setCallSite("mosaic demo: read back, Parquet schema");
      Dataset<Row> written = spark.read().parquet(output);
      // One stage counts both (Dataset counts would add shuffle stages of the same name).
      spark.sparkContext().setCallSite("mosaic demo: read back, count rows and correct tests");
      long[] counts = written.select("is_train", "prediction", "label").javaRDD()
          .map(r -> new long[] {1, !r.getBoolean(0) && r.getInt(1) == r.getInt(2) ? 1 : 0})
          .reduce((a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});
      spark.sparkContext().clearCallSite();
      long count = counts[0];
      long correct = counts[1];
      long testRows = rows - nTrain;

      out.println();
      out.println("Report");
      if (datasets != null) {
        out.printf("  (a) bundled datasets, stratified %.0f/%.0f split (seed %d), %.1f s:%n",
            100 * (1 - DatasetComparison.TEST_FRACTION), 100 * DatasetComparison.TEST_FRACTION,
            seed, datasets.seconds());
        DatasetComparison.print(datasets.results(), out);
        out.printf("  (b) synthetic table:%n");
      }
      out.printf("  rows written       %d to %s%n", count, output);
      out.printf("  shards             %d (ring over barrier tasks)%n", sp);
      out.printf("  Spark start-up     %.1f s%n", startup);
      for (StageProgress.StageTime s : progress.stages()) {
        out.printf("  stage %-3d %-40s %d task(s) %6.1f s%s%n", s.stageId(), s.name(), s.tasks(),
            s.seconds(), s.failed() ? " (failed, retried)" : "");
      }
      out.printf("  model job          %.1f s, %.0f rows/s%n", jobSecs, rows / jobSecs);
      for (TabularJob.TaskReport r : latestPerRank(reports.value(), sp)) {
        out.printf("  task %d on %s: rows %d..%d, %.1f s, allocated %s, executor heap peak %s%n",
            r.rank(), r.host(), r.firstRow(), r.firstRow() + r.rows() - 1, r.seconds(),
            mib(r.allocatedBytes()), mib(r.executorHeapPeakBytes()));
      }
      out.printf("  %s: %d of %d test predictions match the labels (chance %.0f%%)%n",
          weights.file() == null ? "untrained model" : "model", correct, testRows,
          100.0 / classes);
      if (count != rows) {
        out.printf("FAILED: wrote %d rows, expected %d%n", count, rows);
        return 1;
      }
      if (!f.has("no-check")) {
        return check(written, rows, features, classes, nTrain, seed, weights, checkRows, out);
      }
      return 0;
    } finally {
      spark.sparkContext().removeSparkListener(progress);
      spark.stop();
    }
  }

  /** Part (a)'s results and how long it took. */
  record DatasetsPart(List<DatasetComparison.Result> results, double seconds) {}

  private static DatasetsPart datasets(SparkSession spark, MosaicContext ctx, Weights weights,
      long seed, PrintStream out) {
    spark.sparkContext().setJobGroup("mosaic-demo-datasets",
        "Mosaic demo: bundled datasets, nanoTabPFN vs MLlib", false);
    out.println("  (a) bundled datasets: nanoTabPFN vs MLlib LogisticRegression and RandomForest");
    long t0 = System.nanoTime();
    List<DatasetComparison.Result> results =
        DatasetComparison.run(ctx, weights.stateDict(), weights.numHeads(), seed, out);
    spark.sparkContext().clearJobGroup();
    return new DatasetsPart(results, (System.nanoTime() - t0) / 1e9);
  }

  /** Runs the same model unsharded in this JVM and compares probabilities of sample rows. */
  private static int check(Dataset<Row> written, int rows, int features, int classes, long nTrain,
      long seed, Weights weights, int checkRows, PrintStream out) {
    long t0 = System.nanoTime();
    SyntheticTable table = SyntheticTable.generate(rows, features, classes, seed);
    float[] yTrain = new float[(int) nTrain];
    for (int r = 0; r < nTrain; r++) {
      yTrain[r] = table.labels()[r];
    }
    Tensor logits = NanoTabPfnJob.localRowLogits(weights.stateDict(), weights.numHeads(),
        Tensor.of(table.values(), rows, features), yTrain,
        Runtime.getRuntime().availableProcessors());
    int outputs = logits.dim(1);
    int trainClasses = NanoTabPfnModel.classes(yTrain);
    long step = Math.max(1, rows / checkRows);
    List<Row> sample = written.filter(functions.col("row_id").mod(step).equalTo(0))
        .select("row_id", "probabilities").collectAsList();
    double worst = 0;
    for (Row r : sample) {
      long id = r.getLong(0);
      List<Float> p = r.getList(1);
      float[] expected = TabularJob.softmax(logits.data(), (int) id * outputs, trainClasses);
      if (p.size() != trainClasses) {
        worst = Double.POSITIVE_INFINITY;
        continue;
      }
      for (int c = 0; c < trainClasses; c++) {
        worst = Math.max(worst, Math.abs(p.get(c) - expected[c]));
      }
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    boolean ok = worst < 1e-4 && !sample.isEmpty();
    out.printf("  check: %d sample rows vs the unsharded model in one JVM (%.1f s):"
        + " max |Δprobability| = %.2e -> %s%n", sample.size(), secs, worst, ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
  }

  /** The model's weights and where they came from. */
  record Weights(Map<String, Tensor> stateDict, int numHeads, Path file) {
    String description() {
      return file == null
          ? "seeded untrained weights (E 32, 2 heads, 2 blocks, MLP 64)"
          : "checkpoint " + file + " (" + numHeads + " heads)";
    }
  }

  /**
   * {@code --model FILE} (heads from {@code --num-heads} or the file's metadata), else seeded
   * weights sized by {@link TabularConfig#defaults}; the classes must fit the model's outputs.
   */
  static Weights weights(Flags f, int features, int classes) {
    if (!f.has("model")) {
      if (f.has("num-heads")) {
        throw new UserError("--num-heads goes with --model (the seeded model has 2 heads)");
      }
      TabularConfig cfg = TabularConfig.defaults(features, classes);
      return new Weights(cfg.seededWeights(), cfg.heads(), null);
    }
    Path file = Path.of(f.string("model", ""));
    Integer heads = f.has("num-heads") ? f.positive("num-heads", 1) : null;
    try (NanoTabPfnModel model = NanoTabPfnCheckpoint.load(file, heads, 1)) {
      int outputs = model.shape().outputs();
      if (classes > outputs) {
        throw new UserError("--classes " + classes + " exceeds the " + outputs
            + " outputs of the model " + file);
      }
      return new Weights(model.stateDict(), model.shape().numHeads(), file);
    }
  }

  /** The last report of each rank (a retried stage reports twice). */
  static List<TabularJob.TaskReport> latestPerRank(List<TabularJob.TaskReport> all, int sp) {
    TabularJob.TaskReport[] byRank = new TabularJob.TaskReport[sp];
    for (TabularJob.TaskReport r : all) {
      byRank[r.rank()] = r;
    }
    return java.util.Arrays.stream(byRank).filter(java.util.Objects::nonNull).toList();
  }

  private static String mib(long bytes) {
    return bytes < 0 ? "n/a" : String.format("%.0f MiB", bytes / (1024.0 * 1024));
  }
}
