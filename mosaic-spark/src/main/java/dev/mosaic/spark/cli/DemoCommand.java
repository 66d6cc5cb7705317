package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.datasets.ComparisonTable;
import dev.mosaic.spark.datasets.DatasetComparison;
import dev.mosaic.spark.datasets.PriorTable;
import dev.mosaic.spark.jobs.NanoTabPfnJob;
import dev.mosaic.spark.jobs.ParquetOutput;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedInputCheck;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.runner.StageProgress;
import java.io.PrintStream;
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
 * {@code mosaic demo}: the main job, with the shipped pretrained nanoTabPFN model unless
 * {@code --model} or {@code --seeded} says otherwise ({@link DemoWeights}). (a) Evaluates it on
 * the bundled public datasets next to MLlib's baselines ({@link DatasetComparison}) and prints the
 * results also as a Markdown table. (b) Draws a large table from the pretraining prior
 * ({@link PriorTable}, a seed training never uses), runs the model ({@link NanoTabPfnJob}) with
 * its row attention as a ring over {@code --sp} barrier tasks, writes the predictions as Parquet,
 * prints a report, and checks a sample of rows against the same model run unsharded in this JVM.
 */
final class DemoCommand {
  /**
   * Above this many rows the check is off unless {@code --check}: it reruns the whole model in
   * one JVM (every row attends to every train row: O(rows × train rows)), as long as the job.
   */
  static final int CHECK_DEFAULT_MAX_ROWS = 50_000;

  static final String USAGE = String.join("\n",
      "usage: mosaic demo [--rows 20000] [--features 8] [--classes 3] [--train-fraction 0.8]",
      "                   [--sp 2] [--master URL] [--output out/demo-predictions.parquet]",
      "                   [--threads N] [--check-rows 200] [--check | --no-check] [--no-datasets]",
      "                   [--model FILE.safetensors [--num-heads H] | --seeded]",
      "                   " + DeviceFlags.USAGE,
      "  The model: the shipped pretrained nanoTabPFN (models/mosaic-tabpfn.safetensors), a",
      "  checkpoint with --model, or seeded untrained weights with --seeded.",
      "  (a) Scores it on the bundled datasets (iris, wine, breast cancer; stratified 75/25",
      "  split) next to Spark MLlib's LogisticRegression and RandomForestClassifier: accuracy",
      "  and ROC AUC, also as a Markdown table (--no-datasets skips this). (b) Runs it (attention",
      "  across the cells of a row, attention across rows as a ring over --sp Spark barrier",
      "  tasks, MLP) over a table drawn from the pretraining prior with a seed training never",
      "  uses, writes predictions as Parquet, prints accuracy, rows/s and memory per task, and",
      "  checks a sample against the unsharded model (by default up to "
          + CHECK_DEFAULT_MAX_ROWS + " rows; --check",
      "  forces it, --no-check skips it). Default master: local[max(cores, --sp)].");

  private DemoCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("demo", args, Set.of("rows", "features", "classes", "train-fraction",
        "sp", "master", "output", "threads", "check-rows", "device", "gpu-dtype", "comm", "model",
        "num-heads"),
        Set.of("check", "no-check", "no-datasets", "seeded"));
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
    if (classes < 2 || classes > rows / 2) {
      throw new UserError("--classes must be in 2..rows/2 (" + rows / 2 + " for --rows " + rows
          + "), got " + classes);
    }
    if (f.has("check") && f.has("no-check")) {
      throw new UserError("--check and --no-check contradict each other: give one of them");
    }
    String master = f.string("master", SparkSessions.defaultMaster(sp));
    String output = f.string("output", "out/demo-predictions.parquet");
    int checkRows = f.positive("check-rows", 200);
    boolean check = f.has("check") || (!f.has("no-check") && rows <= CHECK_DEFAULT_MAX_ROWS);
    long seed = 42;
    DemoWeights weights = DemoWeights.from(f, classes);

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
      out.printf("Mosaic demo: %d shards on %s%n", sp, spark.sparkContext().master());
      out.printf("  model: nanoTabPFN, %s%n", weights.description());
      DatasetsPart datasets = f.has("no-datasets") ? null : datasets(spark, ctx, weights, seed,
          out);
      long tDraw = System.nanoTime();
      PriorDataset table = PriorTable.draw(rows, features, classes, trainFraction);
      long nTrain = table.nTrain();
      out.printf("  (b) prior table: %d rows x %d features (%d train), %d classes, %s"
          + " generator, seed %#x; drawn in %.1f s%n", rows, features, nTrain, classes,
          table.kind(), PriorTable.SEED, (System.nanoTime() - tDraw) / 1e9);
      // Per-stage progress for part (b) only: the MLlib baselines run hundreds of tiny jobs.
      spark.sparkContext().addSparkListener(progress);
      spark.sparkContext().setJobGroup("mosaic-demo", "Mosaic demo: nanoTabPFN, ring over "
          + sp + " tasks", false);
      CollectionAccumulator<TabularJob.TaskReport> reports =
          spark.sparkContext().collectionAccumulator("mosaic task reports");
      long t1 = System.nanoTime();
      // Stage names in the Spark UI and in the progress lines come from the call site: the job
      // names its shard and model stages, the write is named here.
      Dataset<Row> predictions = NanoTabPfnJob.predict(ctx, PriorTable.toDataFrame(spark, table,
          sp), new NanoTabPfnJob.TableSize(rows, nTrain, features), weights.stateDict(),
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
        out.println("  As Markdown:");
        out.println();
        out.print(ComparisonTable.markdown(datasets.results()));
        out.println();
        out.printf("  (b) prior table:%n");
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
      out.printf("  accuracy           %.3f: %d of %d test predictions match the labels"
          + " (%s; majority class %.3f)%n", correct / (double) testRows, correct, testRows,
          weights.trained() ? "model" : "untrained model", majorityShare(table));
      if (count != rows) {
        out.printf("FAILED: wrote %d rows, expected %d%n", count, rows);
        return 1;
      }
      if (!check) {
        out.printf("  check: skipped (%s)%n", f.has("no-check") ? "--no-check"
            : rows + " rows > " + CHECK_DEFAULT_MAX_ROWS + ": it would rerun the whole model in"
                + " one JVM; --check forces it");
        return 0;
      }
      return check(written, table, weights, checkRows, out);
    } finally {
      spark.sparkContext().removeSparkListener(progress);
      spark.stop();
    }
  }

  /** Part (a)'s results and how long it took. */
  record DatasetsPart(List<DatasetComparison.Result> results, double seconds) {}

  private static DatasetsPart datasets(SparkSession spark, MosaicContext ctx,
      DemoWeights weights, long seed, PrintStream out) {
    spark.sparkContext().setJobGroup("mosaic-demo-datasets",
        "Mosaic demo: bundled datasets, nanoTabPFN vs MLlib", false);
    out.println("  (a) bundled datasets: nanoTabPFN vs MLlib LogisticRegression and RandomForest");
    long t0 = System.nanoTime();
    List<DatasetComparison.Result> results =
        DatasetComparison.run(ctx, weights.stateDict(), weights.numHeads(), seed, out);
    spark.sparkContext().clearJobGroup();
    return new DatasetsPart(results, (System.nanoTime() - t0) / 1e9);
  }

  /** The share of the test rows in their most common class: what always guessing it scores. */
  static double majorityShare(PriorDataset table) {
    int[] count = new int[table.classes()];
    for (float y : table.yTest()) {
      count[(int) y]++;
    }
    int max = 0;
    for (int c : count) {
      max = Math.max(max, c);
    }
    return max / (double) (table.rows() - table.nTrain());
  }

  /** Runs the same model unsharded in this JVM and compares probabilities of sample rows. */
  private static int check(Dataset<Row> written, PriorDataset table, DemoWeights weights,
      int checkRows, PrintStream out) {
    long t0 = System.nanoTime();
    float[] yTrain = table.yTrain();
    Tensor logits = NanoTabPfnJob.localRowLogits(weights.stateDict(), weights.numHeads(),
        table.xTensor(), yTrain, Runtime.getRuntime().availableProcessors());
    int outputs = logits.dim(1);
    int trainClasses = NanoTabPfnModel.classes(yTrain);
    long step = Math.max(1, table.rows() / checkRows);
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
