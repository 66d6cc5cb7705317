package dev.mosaic.spark.datasets;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.jobs.NanoTabPfnJob;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.runner.MosaicContext;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The demo's real-data part: on every bundled dataset ({@link BundledDatasets}), one stratified
 * split (25% test, seeded); the nanoTabPFN model (its row attention a ring over the context's
 * barrier tasks, {@link NanoTabPfnJob#testLogits}) and MLlib's baselines ({@link MllibBaselines})
 * on the same split, all in this Spark application; accuracy and ROC AUC
 * ({@link ClassifierMetrics}) of each.
 */
public final class DatasetComparison {
  /** The test share of every split. */
  public static final double TEST_FRACTION = 0.25;
  public static final String MODEL = "nanoTabPFN";

  /** One model on one dataset; {@code note} is non-null when it did not run. */
  public record Result(String dataset, int trainRows, int testRows, int features, int classes,
      String model, double accuracy, double auc, double seconds, String note) {}

  private DatasetComparison() {}

  /**
   * Runs every model on every bundled dataset.
   *
   * @param stateDict the nanoTabPFN weights; a dataset with more classes than their outputs
   *     gets a note instead of a model result
   * @param progress one line per dataset as it finishes, or null
   */
  public static List<Result> run(MosaicContext ctx, Map<String, Tensor> stateDict, int numHeads,
      long seed, PrintStream progress) {
    return run(ctx, stateDict, numHeads, seed, BundledDatasets.NAMES, progress);
  }

  /** As {@link #run(MosaicContext, Map, int, long, PrintStream)} on the named datasets only. */
  public static List<Result> run(MosaicContext ctx, Map<String, Tensor> stateDict, int numHeads,
      long seed, List<String> datasets, PrintStream progress) {
    int outputs = stateDict.get("decoder.linear2.weight").dim(0);
    List<Result> results = new ArrayList<>();
    for (String name : datasets) {
      TrainTestSplit s = TrainTestSplit.stratified(BundledDatasets.load(name), TEST_FRACTION,
          seed);
      long t0 = System.nanoTime();
      if (s.classes() > outputs) {
        results.add(result(s, MODEL, null, t0, s.classes() + " classes, the model has "
            + outputs + " outputs"));
      } else {
        Tensor logits = NanoTabPfnJob.testLogits(ctx, stateDict, numHeads, s.xTensor(),
            s.yTrain());
        float[] p = new float[s.tests() * s.classes()];
        for (int r = 0; r < s.tests(); r++) {
          System.arraycopy(TabularJob.softmax(logits.data(), r * outputs, s.classes()), 0, p,
              r * s.classes(), s.classes());
        }
        results.add(result(s, MODEL, p, t0, null));
      }
      for (MllibBaselines.Kind kind : MllibBaselines.Kind.values()) {
        long t1 = System.nanoTime();
        results.add(result(s, kind.label(),
            MllibBaselines.probabilities(ctx.spark(), s, kind, seed), t1, null));
      }
      if (progress != null) {
        progress.printf("  dataset %s: %d train / %d test rows, %d features, %d classes%n", name,
            s.nTrain(), s.tests(), s.features(), s.classes());
      }
    }
    return results;
  }

  private static Result result(TrainTestSplit s, String model, float[] p, long t0, String note) {
    double secs = (System.nanoTime() - t0) / 1e9;
    int[] labels = s.yTest();
    return new Result(s.name(), s.nTrain(), s.tests(), s.features(), s.classes(), model,
        p == null ? Double.NaN : ClassifierMetrics.accuracy(p, s.classes(), labels),
        p == null ? Double.NaN : ClassifierMetrics.rocAuc(p, s.classes(), labels), secs, note);
  }

  /** The report table: one line per dataset and model, then each model's mean accuracy. */
  public static void print(List<Result> results, PrintStream out) {
    out.printf("  %-14s %-26s %9s %8s %7s%n", "dataset", "model", "accuracy", "ROC AUC",
        "time");
    Map<String, double[]> means = new LinkedHashMap<>();
    for (Result r : results) {
      if (r.note() != null) {
        out.printf("  %-14s %-26s %s%n", r.dataset(), r.model(), "skipped: " + r.note());
        continue;
      }
      out.printf("  %-14s %-26s %9.3f %8.3f %6.1fs%n", r.dataset(), r.model(), r.accuracy(),
          r.auc(), r.seconds());
      double[] m = means.computeIfAbsent(r.model(), k -> new double[3]);
      m[0] += r.accuracy();
      m[1] += r.auc();
      m[2]++;
    }
    for (Map.Entry<String, double[]> e : means.entrySet()) {
      double[] m = e.getValue();
      out.printf("  %-14s %-26s %9.3f %8.3f%n", "mean", e.getKey(), m[0] / m[2], m[1] / m[2]);
    }
  }
}
