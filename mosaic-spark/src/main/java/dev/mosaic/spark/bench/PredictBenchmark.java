package dev.mosaic.spark.bench;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.CachedScorer;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TrainRowCache;
import java.io.PrintStream;
import java.util.Locale;

/**
 * {@code mosaic bench predict}: "fit once, score many" measured. In one run, on the same model and
 * synthetic table, test rows are scored in batches (a call = one batch) (a) against a
 * {@link TrainRowCache} built once and (b) recomputing the train rows on every call
 * ({@link NanoTabPfnModel#logits} over train + batch). (b) is far slower, so it scores only the
 * first {@code calls} batches; the rates are per test row. The batches both scored must agree.
 */
public final class PredictBenchmark {
  /**
   * Cached and recomputed logits differ only by summation order (fp32, ~1e-6); anything past
   * this is a bug in the cache, not rounding.
   */
  public static final double MAX_DELTA = 1e-4;

  /** Sizes of one run. */
  public record Sizes(int train, int test, int batch, int features, int calls, int threads) {
    public Sizes {
      positive("train", train);
      positive("test", test);
      positive("batch", batch);
      positive("features", features);
      positive("calls", calls);
      positive("threads", threads);
    }

    private static void positive(String name, int v) {
      if (v <= 0) {
        throw new IllegalArgumentException(name + " must be positive, got " + v);
      }
    }

    int batches() {
      return (test + batch - 1) / batch;
    }
  }

  /** Timings (seconds), rates (test rows / s) and the largest |Δlogits| of the shared batches. */
  public record Result(double buildSeconds, double cachedSeconds, int recomputedRows,
      double recomputeSeconds, double maxDelta) {
    public double cachedRate(int test) {
      return test / cachedSeconds;
    }

    public double amortisedRate(int test) {
      return test / (buildSeconds + cachedSeconds);
    }

    public double recomputeRate() {
      return recomputedRows / recomputeSeconds;
    }
  }

  private PredictBenchmark() {}

  /** Runs both ways, prints the report; the caller checks {@link Result#maxDelta}. */
  public static Result run(NanoTabPfnModel model, Sizes s, long seed, PrintStream out) {
    int classes = Math.max(1, Math.min(3, model.shape().outputs()));
    SyntheticTable table = SyntheticTable.generate(s.train() + s.test(), s.features(), classes,
        seed);
    float[] yTrain = new float[s.train()];
    for (int i = 0; i < yTrain.length; i++) {
      yTrain[i] = table.labels()[i];
    }
    Tensor xTrain = rows(table, 0, s.train());
    out.printf(Locale.ROOT, "bench predict: %,d train rows, %,d test rows in batches of %,d,"
        + " %d features, E=%d, %d heads, %d blocks, %d threads%n", s.train(), s.test(), s.batch(),
        s.features(), model.shape().embedDim(), model.shape().numHeads(), model.shape().layers(),
        s.threads());

    warmUp(model, table, yTrain, s);
    long t0 = System.nanoTime();
    TrainRowCache cache = TrainRowCache.build(model, xTrain, yTrain, s.threads());
    double build = seconds(t0);
    out.printf(Locale.ROOT, "  (a) cache built once: %.2f s (%,d bytes of keys/values)%n", build,
        cache.bytes());

    int shared = Math.min(s.calls(), s.batches());
    float[][] cachedShared = new float[shared][];
    double cached;
    try (CachedScorer scorer = new CachedScorer(model, cache, s.threads())) {
      long t1 = System.nanoTime();
      for (int b = 0; b < s.batches(); b++) {
        int from = s.train() + b * s.batch();
        int n = Math.min(s.batch(), s.train() + s.test() - from);
        Tensor logits = scorer.logits(rows(table, from, n));
        if (b < shared) {
          cachedShared[b] = logits.data();
        }
      }
      cached = seconds(t1);
    }
    Result partial = new Result(build, cached, 0, Double.NaN, Double.NaN);
    out.printf(Locale.ROOT, "  (a) cached: %d calls scored all %,d test rows in %.2f s:"
        + " %,.0f rows/s (%,.0f rows/s with the build amortised)%n", s.batches(), s.test(), cached,
        partial.cachedRate(s.test()), partial.amortisedRate(s.test()));

    double maxDelta = 0;
    int recomputed = 0;
    long t2 = System.nanoTime();
    for (int b = 0; b < shared; b++) {
      int from = s.train() + b * s.batch();
      int n = Math.min(s.batch(), s.train() + s.test() - from);
      Tensor x = concatRows(xTrain, rows(table, from, n));
      float[] logits = model.logits(x, yTrain).data();
      recomputed += n;
      for (int i = 0; i < logits.length; i++) {
        maxDelta = Math.max(maxDelta, Math.abs(logits[i] - cachedShared[b][i]));
      }
    }
    double recompute = seconds(t2);
    Result r = new Result(build, cached, recomputed, recompute, maxDelta);
    out.printf(Locale.ROOT, "  (b) recomputed: %d calls (train rows recomputed each) scored %,d"
        + " test rows in %.2f s: %,.0f rows/s%n", shared, recomputed, recompute,
        r.recomputeRate());
    out.printf(Locale.ROOT, "  ratio cached / recomputed: %.1fx (%.1fx with the build"
        + " amortised over %,d test rows)%n", r.cachedRate(s.test()) / r.recomputeRate(),
        r.amortisedRate(s.test()) / r.recomputeRate(), s.test());
    out.printf(Locale.ROOT, "  max |delta logits| on the %d batches both scored: %.2e"
        + " (limit %.0e)%n", shared, maxDelta, MAX_DELTA);
    return r;
  }

  /** The first timed step would otherwise also pay for the JIT compiling the kernels. */
  private static void warmUp(NanoTabPfnModel model, SyntheticTable table, float[] yTrain,
      Sizes s) {
    int train = Math.min(s.train(), 256);
    int test = Math.min(s.test(), Math.min(s.batch(), 64));
    float[] y = java.util.Arrays.copyOf(yTrain, train);
    Tensor xTrain = rows(table, 0, train);
    Tensor xTest = rows(table, s.train(), test);
    try (CachedScorer scorer = new CachedScorer(model,
        TrainRowCache.build(model, xTrain, y, s.threads()), s.threads())) {
      scorer.logits(xTest);
    }
    model.logits(concatRows(xTrain, xTest), y);
  }

  private static Tensor rows(SyntheticTable t, int from, int n) {
    float[] v = new float[n * t.features()];
    System.arraycopy(t.values(), from * t.features(), v, 0, v.length);
    return Tensor.of(v, n, t.features());
  }

  private static Tensor concatRows(Tensor a, Tensor b) {
    float[] v = new float[a.data().length + b.data().length];
    System.arraycopy(a.data(), 0, v, 0, a.data().length);
    System.arraycopy(b.data(), 0, v, a.data().length, b.data().length);
    return Tensor.of(v, a.dim(0) + b.dim(0), a.dim(1));
  }

  private static double seconds(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }
}
