package dev.mosaic.spark.cli;

import dev.mosaic.spark.charts.Charts;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.prior.PriorSizes;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.train.AdamWSettings;
import dev.mosaic.spark.train.LearningRateSchedule;
import dev.mosaic.spark.train.PretrainRun;
import dev.mosaic.spark.train.PretrainSettings;
import dev.mosaic.spark.train.StepRecord;
import dev.mosaic.spark.train.TrainingCheckpoint;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code mosaic pretrain}: trains a nanoTabPFN model on tables drawn from the prior, data parallel
 * over {@code --sp} barrier tasks ({@link PretrainRun}), with checkpoints every
 * {@code --checkpoint-every} steps and {@code --resume}.
 */
final class PretrainCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic pretrain --out FILE.safetensors [--steps 2000] [--batch 8] [--sp 2]",
      "                       [--embed 64] [--heads 4] [--layers 3] [--mlp 128] [--outputs 10]",
      "                       [--lr 0.001] [--min-lr 0.0001] [--warmup STEPS] [--clip 1.0]",
      "                       [--weight-decay 0.01] [--seed 1] [--init-seed 7]",
      "                       [--min-rows 20] [--max-rows 1000] [--max-features 30]",
      "                       [--max-classes 10] [--curriculum STEPS]",
      "                       [--checkpoint-every 50] [--max-restarts 3] [--resume]",
      "                       [--stop-at STEP] [--plot]",
      "                       [--master URL] [--threads N]",
      "  Pretrains the nanoTabPFN architecture on synthetic tables from Mosaic's prior (random",
      "  causal MLPs and trees): each of --sp Spark barrier tasks draws its share of the --batch",
      "  tables per step, runs forward and backward, and the gradients are all-reduced so that",
      "  every task applies the same AdamW step (warm-up, cosine decay to --min-lr, clipping).",
      "  The prior's tables grow from small binary ones (50..150 rows, <= 5 features) to the",
      "  --min-rows/--max-rows/--max-features/--max-classes ranges over the first --curriculum",
      "  steps (default: a quarter of --steps). --out (a Hadoop path: local, HDFS, S3; shared by",
      "  the executors on a cluster) gets the model, its optimizer state (.optim.safetensors) and",
      "  the loss log (.log.csv) every --checkpoint-every steps; a failed stage resumes from the",
      "  last checkpoint, and --resume continues a stopped run (--stop-at ends a sitting early",
      "  with the schedule of all --steps). --plot writes the loss curve next to --out",
      "  (.loss.png).");

  private PretrainCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("pretrain", args, Set.of("out", "steps", "batch", "sp", "embed", "heads",
        "layers", "mlp", "outputs", "lr", "min-lr", "warmup", "clip", "weight-decay", "seed",
        "init-seed", "min-rows", "max-rows", "max-features", "max-classes", "curriculum",
        "checkpoint-every", "max-restarts", "master", "threads", "stop-at"),
        Set.of("resume", "plot"));
    String output = f.required("out");
    int sp = f.positive("sp", 2);
    Map<String, String> conf = new HashMap<>();
    if (f.has("threads")) {
      conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
    }
    String master = f.string("master", SparkSessions.defaultMaster(sp));
    // A fresh run's flags are checked before Spark starts; a resumed run's need its checkpoint,
    // read through Spark's Hadoop configuration (credentials for S3 and the like).
    PretrainSettings fresh = f.has("resume") ? null : settings(f, null);
    SparkSession spark = SparkSessions.getOrCreate(master, "mosaic-pretrain", conf);
    try {
      PretrainSettings settings = fresh != null ? fresh
          : settings(f, resumed(output, spark.sparkContext().hadoopConfiguration()));
      return train(f, spark, settings, output, sp, out);
    } finally {
      spark.stop();
    }
  }

  /** The settings of the checkpoint --resume continues, or null if there is none yet. */
  private static PretrainSettings resumed(String output,
      org.apache.hadoop.conf.Configuration conf) {
    if (!TrainingCheckpoint.exists(output, conf)) {
      return null;
    }
    TrainingCheckpoint.Loaded l = TrainingCheckpoint.load(output, conf);
    Map<String, String> meta = l.metadata();
    long steps = Long.parseLong(meta.getOrDefault("mosaic_pretrain_steps", "" + l.step()));
    return PretrainSettings.fromMetadata(output, meta, l.optimizer().settings(),
        Math.max(steps, Math.max(1, l.step())), 50);
  }

  /**
   * The run's settings from the flags; a flag not given takes the resumed run's value, or the
   * default of a fresh run (warm-up and curriculum scale with --steps).
   */
  static PretrainSettings settings(Flags f, PretrainSettings base) {
    long steps = positiveLong(f, "steps", base == null ? 2000 : base.steps());
    NanoTabPfnShape b = base == null ? new NanoTabPfnShape(64, 4, 3, 128, 10) : base.shape();
    PriorSizes e = base == null ? PriorSizes.defaults() : base.endSizes();
    try {
      NanoTabPfnShape shape = new NanoTabPfnShape(f.positive("embed", b.embedDim()),
          f.positive("heads", b.numHeads()), f.positive("layers", b.layers()),
          f.positive("mlp", b.mlpHidden()), f.positive("outputs", b.outputs()));
      PriorSizes end = new PriorSizes(f.positive("min-rows", e.minRows()),
          f.positive("max-rows", e.maxRows()), f.positive("max-features", e.maxFeatures()),
          f.positive("max-classes", e.maxClasses()));
      double lr = positiveNumber(f, "lr", base == null ? 1e-3 : base.schedule().peak());
      double minLr = number(f, "min-lr", base == null ? lr / 10 : base.schedule().min());
      long warmup = Math.min(steps - 1, longValue(f, "warmup", base == null
          ? Math.max(1, Math.min(steps / 20, 200)) : base.schedule().warmupSteps()));
      long curriculum = longValue(f, "curriculum",
          base == null ? steps / 4 : base.curriculumSteps());
      PriorSizes start = base != null ? base.startSizes() : PriorSizes.smallBinary();
      // The curriculum never starts above where it ends.
      start = new PriorSizes(Math.min(start.minRows(), end.minRows()),
          Math.min(start.maxRows(), end.maxRows()),
          Math.min(start.maxFeatures(), end.maxFeatures()),
          Math.min(start.maxClasses(), end.maxClasses()));
      return new PretrainSettings(shape, steps,
          f.positive("batch", base == null ? 8 : base.batch()),
          new AdamWSettings(0.9, 0.999, 1e-8, number(f, "weight-decay",
              base == null ? 0.01 : base.adamW().weightDecay())),
          new LearningRateSchedule(lr, (int) warmup, steps, minLr),
          positiveNumber(f, "clip", base == null ? 1.0 : base.clipNorm()),
          f.longValue("seed", base == null ? 1 : base.priorSeed()), start, end, curriculum,
          f.positive("checkpoint-every", 50));
    } catch (IllegalArgumentException ex) {
      throw new UserError("pretrain: " + ex.getMessage());
    }
  }

  private static int train(Flags f, SparkSession spark, PretrainSettings settings, String output,
      int sp, PrintStream out) {
    long steps = settings.steps();
    long stopAt = f.longValue("stop-at", steps);
    if (stopAt < 1 || stopAt > steps) {
      throw new UserError("--stop-at must be in 1..--steps " + steps + ", got " + stopAt);
    }
    int maxRestarts = f.integer("max-restarts", 3);
    if (maxRestarts < 0) {
      throw new UserError("--max-restarts must be at least 0, got " + maxRestarts);
    }

    NanoTabPfnShape shape = settings.shape();
    PriorSizes end = settings.endSizes();
    try {
      MosaicContext ctx = MosaicContext.init(spark, sp);
      out.printf("Mosaic pretrain: nanoTabPFN E %d, %d heads, %d layers, MLP %d, %d outputs;"
          + " %d steps x %d tables on %d tasks (%s)%n", shape.embedDim(), shape.numHeads(),
          shape.layers(), shape.mlpHidden(), shape.outputs(), steps, settings.batch(), sp,
          spark.sparkContext().master());
      out.printf("  AdamW lr %.3g (warm-up %d steps, cosine to %.3g), clip %.3g; prior seed %d,"
          + " tables %d..%d rows x <= %d features, <= %d classes after %d curriculum steps%n",
          settings.schedule().peak(), settings.schedule().warmupSteps(),
          settings.schedule().min(), settings.clipNorm(), settings.priorSeed(), end.minRows(),
          end.maxRows(), end.maxFeatures(), end.maxClasses(), settings.curriculumSteps());
      ProgressLine progress = new ProgressLine(steps, out);
      PretrainRun.Result result = PretrainRun.run(ctx, settings, output, f.has("resume"),
          stopAt, maxRestarts, f.longValue("init-seed", 7), progress::accept);
      out.printf("done: step %d, checkpoint %s (%d restart%s)%n", result.step(), output,
          result.restarts(), result.restarts() == 1 ? "" : "s");
      if (f.has("plot")) {
        Path png = Path.of(plotPath(output));
        Charts.write(lossChart(result.records()), png);
        out.println("loss curve: " + png);
      }
      return 0;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** {@code X.safetensors → X.loss.png}. */
  static String plotPath(String output) {
    return TrainingCheckpoint.besideModel(output, ".loss.png");
  }

  /** The per-step loss and its moving average over 50 steps. */
  static org.jfree.chart.JFreeChart lossChart(List<StepRecord> records) {
    int n = records.size();
    double[][] raw = new double[n][];
    double[][] smooth = new double[n][];
    double window = 0;
    for (int i = 0; i < n; i++) {
      StepRecord r = records.get(i);
      window += r.loss();
      if (i >= 50) {
        window -= records.get(i - 50).loss();
      }
      raw[i] = new double[] {r.step(), r.loss()};
      smooth[i] = new double[] {r.step(), window / Math.min(i + 1, 50)};
    }
    Map<String, double[][]> series = new LinkedHashMap<>();
    series.put("loss per step", raw);
    series.put("mean of the last 50 steps", smooth);
    return Charts.lines("Pretraining loss (test-row cross-entropy)", "step", "loss", series,
        false, false);
  }

  /** After each stage: step, loss, speed and what is left. */
  static final class ProgressLine {
    private final long steps;
    private final PrintStream out;
    private final long started = System.nanoTime();
    private long stepsDone;

    ProgressLine(long steps, PrintStream out) {
      this.steps = steps;
      this.out = out;
    }

    void accept(List<StepRecord> chunk) {
      if (chunk.isEmpty()) {
        return;
      }
      stepsDone += chunk.size();
      double secs = (System.nanoTime() - started) / 1e9;
      double rate = stepsDone / secs;
      long last = chunk.get(chunk.size() - 1).step() + 1;
      double loss = chunk.stream().mapToDouble(StepRecord::loss).average().orElse(Double.NaN);
      double norm = chunk.stream().mapToDouble(StepRecord::gradNorm).average().orElse(Double.NaN);
      long eta = Math.round((steps - last) / rate);
      out.printf("step %d/%d  loss %.4f (mean of %d)  grad norm %.3f  lr %.3g  %.2f steps/s"
          + "  ETA %dh%02dm%02ds%n", last, steps, loss, chunk.size(), norm,
          chunk.get(chunk.size() - 1).lr(), rate, eta / 3600, eta / 60 % 60, eta % 60);
      out.flush();
    }
  }

  private static long positiveLong(Flags f, String name, long dflt) {
    long v = f.longValue(name, dflt);
    if (v < 1) {
      throw new UserError("--" + name + " must be at least 1, got " + v);
    }
    return v;
  }

  private static long longValue(Flags f, String name, long dflt) {
    long v = f.longValue(name, dflt);
    if (v < 0) {
      throw new UserError("--" + name + " must be at least 0, got " + v);
    }
    return v;
  }

  private static double number(Flags f, String name, double dflt) {
    if (!f.has(name)) {
      return dflt;
    }
    String v = f.string(name, "");
    try {
      double d = Double.parseDouble(v.trim());
      if (Double.isFinite(d) && d >= 0) {
        return d;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new UserError("--" + name + " expects a non-negative number, got '" + v + "'");
  }

  private static double positiveNumber(Flags f, String name, double dflt) {
    double d = number(f, name, dflt);
    if (!(d > 0)) {
      throw new UserError("--" + name + " must be above 0, got " + d);
    }
    return d;
  }
}
