package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.model.TabularModel;
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
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.util.CollectionAccumulator;

/**
 * {@code mosaic demo}: the main job. Generates a synthetic table with Spark, runs the
 * nanoTabPFN-style model with row attention as a ring over {@code --sp} barrier tasks, writes the
 * predictions as Parquet, prints a report, and checks a sample of rows against the same model run
 * unsharded in this JVM.
 */
final class DemoCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic demo [--rows 20000] [--features 8] [--classes 3] [--train-fraction 0.8]",
      "                   [--sp 2] [--master URL] [--output out/demo-predictions.parquet]",
      "                   [--threads N] [--check-rows 200] [--no-check]",
      "                   " + DeviceFlags.USAGE,
      "  Runs the tabular attention model (feature attention + ring row attention over --sp Spark",
      "  barrier tasks + MLP) over a synthetic table, writes predictions as Parquet, prints a",
      "  report and checks a sample against the unsharded model. Default master:",
      "  local[max(cores, --sp)].");

  private DemoCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("demo", args, Set.of("rows", "features", "classes", "train-fraction",
        "sp", "master", "output", "threads", "check-rows", "device", "gpu-dtype", "comm"),
        Set.of("no-check"));
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
    TabularConfig cfg = TabularConfig.defaults(features, classes);

    Map<String, String> conf = new HashMap<>();
    devices.putInto(conf);
    if (f.has("threads")) {
      conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
    }
    long t0 = System.nanoTime();
    SparkSession spark = SparkSessions.getOrCreate(master, "mosaic-demo", conf);
    StageProgress progress = new StageProgress(out);
    spark.sparkContext().addSparkListener(progress);
    try {
      double startup = (System.nanoTime() - t0) / 1e9;
      MosaicContext ctx = MosaicContext.init(spark, sp);
      out.printf("Mosaic demo: %d rows x %d features (%d train), %d classes, %d shards on %s%n",
          rows, features, nTrain, classes, sp, spark.sparkContext().master());
      spark.sparkContext().setJobGroup("mosaic-demo", "Mosaic demo: tabular model, ring over "
          + sp + " tasks", false);
      CollectionAccumulator<TabularJob.TaskReport> reports =
          spark.sparkContext().collectionAccumulator("mosaic task reports");
      Dataset<Row> table = TabularJob.synthetic(spark, rows, features, classes, seed, sp);
      long t1 = System.nanoTime();
      // Stage names in the Spark UI and in the progress lines come from the call site.
      spark.sparkContext().setCallSite("mosaic demo: generate, shard, model (ring), write Parquet");
      TabularJob.predict(ctx, table, rows, nTrain, cfg, reports)
          .write().mode(SaveMode.Overwrite).parquet(output);
      double jobSecs = (System.nanoTime() - t1) / 1e9;

      spark.sparkContext().setCallSite("mosaic demo: read back and report");
      Dataset<Row> written = spark.read().parquet(output);
      long count = written.count();
      long testRows = rows - nTrain;
      long correct = written.filter("NOT is_train AND prediction = label").count();

      out.println();
      out.println("Report");
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
      out.printf("  untrained model: %d of %d test predictions match the labels (chance %.0f%%)%n",
          correct, testRows, 100.0 / classes);
      if (count != rows) {
        out.printf("FAILED: wrote %d rows, expected %d%n", count, rows);
        return 1;
      }
      if (!f.has("no-check")) {
        return check(written, rows, features, classes, nTrain, seed, cfg, checkRows, out);
      }
      return 0;
    } finally {
      spark.sparkContext().removeSparkListener(progress);
      spark.stop();
    }
  }

  /** Runs the same model unsharded in this JVM and compares probabilities of sample rows. */
  private static int check(Dataset<Row> written, int rows, int features, int classes, long nTrain,
      long seed, TabularConfig cfg, int checkRows, PrintStream out) {
    long t0 = System.nanoTime();
    SyntheticTable table = SyntheticTable.generate(rows, features, classes, seed);
    Tensor logits;
    try (TabularModel model = new TabularModel(cfg, null,
        Runtime.getRuntime().availableProcessors())) {
      logits = model.forward(Tensor.of(table.values(), rows, features), table.labels(), 0, nTrain);
    }
    long step = Math.max(1, rows / checkRows);
    List<Row> sample = written.filter(functions.col("row_id").mod(step).equalTo(0))
        .select("row_id", "probabilities").collectAsList();
    double worst = 0;
    for (Row r : sample) {
      long id = r.getLong(0);
      List<Float> p = r.getList(1);
      float[] expected = TabularJob.softmax(logits.data(), (int) id * classes, classes);
      for (int c = 0; c < classes; c++) {
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
