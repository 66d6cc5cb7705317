package dev.mosaic.spark.prior;

import java.io.Serializable;
import java.util.SplittableRandom;

/**
 * Synthetic classification tables in the spirit of TabPFN's prior, for pretraining. Each table is
 * drawn from a random structural causal model ({@link RandomMlpScm}, 70%) or from random decision
 * trees ({@link RandomTrees}, 30%); its sizes come from {@link PriorSizes}: rows, features and
 * classes uniform in their ranges, the train fraction uniform in [0.5, 0.9]. The continuous target
 * is cut into classes at random quantiles ({@link ClassLabels}); each feature then gets a random
 * scale and offset (and sometimes a few integer levels), so the model must rely on its own
 * standardisation. The rows are shuffled, train rows first, and every class occurs among the
 * train rows.
 *
 * <p>Deterministic: {@link #sample} with the same seed and keys gives a bit-identical table on
 * any JVM (SplittableRandom and StrictMath only), so data-parallel ranks can draw their own tables
 * from {@code (step, rank, slot)} and a resumed run draws the same ones again.
 */
public final class Prior implements Serializable {
  private static final double MLP_SHARE = 0.7;
  private final PriorSizes sizes;
  private final long seed;

  public Prior(PriorSizes sizes, long seed) {
    this.sizes = sizes;
    this.seed = seed;
  }

  public PriorSizes sizes() {
    return sizes;
  }

  /** The table for {@code keys} (for example step, rank and slot in the batch). */
  public PriorDataset sample(long... keys) {
    return sample(sizes, keys);
  }

  /** The table for {@code keys} drawn with other sizes (a curriculum's current ones). */
  public PriorDataset sample(PriorSizes with, long... keys) {
    SplittableRandom rnd = new SplittableRandom(mix(seed, keys));
    int rows = drawRows(rnd, with);
    int features = drawFeatures(rnd, with);
    // At least ~8 rows per class, so that a small table still shows every class a few times.
    int classes = Math.min(2 + rnd.nextInt(with.maxClasses() - 1), Math.max(2, rows / 8));
    double trainFraction = 0.5 + 0.4 * rnd.nextDouble();
    return draw(rnd, rows, features, classes, trainFraction);
  }

  /**
   * A table of exactly these sizes for {@code keys} (the demo's large table); the generator,
   * labels and scales are drawn as in {@link #sample(PriorSizes, long...)}.
   */
  public PriorDataset sample(int rows, int features, int classes, double trainFraction,
      long... keys) {
    if (rows < 4 || features < 1 || classes < 2 || classes > rows / 2
        || !(trainFraction > 0 && trainFraction < 1)) {
      throw new IllegalArgumentException("prior table sizes: expected rows >= 4, features >= 1,"
          + " 2 <= classes <= rows/2 and a train fraction in (0, 1), got rows " + rows
          + ", features " + features + ", classes " + classes + ", train fraction "
          + trainFraction);
    }
    return draw(new SplittableRandom(mix(seed, keys)), rows, features, classes, trainFraction);
  }

  private static PriorDataset draw(SplittableRandom rnd, int rows, int features, int classes,
      double trainFraction) {
    int nTrain = (int) Math.max(classes, Math.min(rows - 1, Math.round(rows * trainFraction)));
    boolean mlp = rnd.nextDouble() < MLP_SHARE;
    RawTable raw = mlp ? RandomMlpScm.draw(rnd, rows, features)
        : RandomTrees.draw(rnd, rows, features);
    int[] labels = ClassLabels.cut(rnd, raw.target(), classes);
    double[][] cols = raw.columns();
    for (double[] col : cols) {
      rescale(rnd, col);
    }
    int[] order = RandomMlpScm.permutation(rnd, rows);
    everyClassInTrain(order, labels, classes, nTrain);
    float[] x = new float[rows * features];
    float[] y = new float[rows];
    for (int i = 0; i < rows; i++) {
      int r = order[i];
      for (int f = 0; f < features; f++) {
        x[i * features + f] = (float) cols[f][r];
      }
      y[i] = labels[r];
    }
    return new PriorDataset(x, y, rows, features, classes, nTrain, mlp ? "mlp" : "trees");
  }

  /**
   * The rows and features of the table {@link #sample(PriorSizes, long...)} would draw for these
   * keys, without drawing it (the same first draws of the same stream): what a data-parallel step
   * needs to balance its tables over the ranks before any rank draws one.
   *
   * @return {rows, features}
   */
  public int[] size(PriorSizes with, long... keys) {
    SplittableRandom rnd = new SplittableRandom(mix(seed, keys));
    int rows = drawRows(rnd, with);
    return new int[] {rows, drawFeatures(rnd, with)};
  }

  private static int drawRows(SplittableRandom rnd, PriorSizes with) {
    return with.minRows() + rnd.nextInt(with.maxRows() - with.minRows() + 1);
  }

  private static int drawFeatures(SplittableRandom rnd, PriorSizes with) {
    return 1 + rnd.nextInt(with.maxFeatures());
  }

  /** A random scale (e^±4) and offset; one column in ten becomes a few integer levels. */
  private static void rescale(SplittableRandom rnd, double[] col) {
    if (rnd.nextDouble() < 0.1) {
      RandomMlpScm.standardize(col);
      int levels = 2 + rnd.nextInt(8);
      for (int r = 0; r < col.length; r++) {
        // standardised values mostly in ±2: levels buckets over that range
        col[r] = Math.max(0, Math.min(levels - 1, Math.floor((col[r] + 2) / 4 * levels)));
      }
      return;
    }
    double scale = Math.exp(rnd.nextDouble() * 8 - 4);
    double offset = rnd.nextGaussian() * 5 * scale;
    for (int r = 0; r < col.length; r++) {
      col[r] = col[r] * scale + offset;
    }
  }

  /**
   * Swaps rows into the train part (the first {@code nTrain} positions of {@code order}) until
   * every class has one there; a class that has two or more train rows gives one up. Possible
   * because {@code nTrain >= classes} and every class is non-empty.
   */
  static void everyClassInTrain(int[] order, int[] labels, int classes, int nTrain) {
    int[] count = new int[classes];
    for (int i = 0; i < nTrain; i++) {
      count[labels[order[i]]]++;
    }
    for (int c = 0; c < classes; c++) {
      if (count[c] > 0) {
        continue;
      }
      int from = nTrain;
      while (labels[order[from]] != c) {
        from++;
      }
      int to = 0;
      while (count[labels[order[to]]] < 2) {
        to++;
      }
      count[labels[order[to]]]--;
      count[c]++;
      int t = order[from];
      order[from] = order[to];
      order[to] = t;
    }
  }

  /** SplitMix64 over the seed and keys: different keys give unrelated streams. */
  static long mix(long seed, long... keys) {
    long h = splitMix(seed);
    for (long k : keys) {
      h = splitMix(h ^ splitMix(k + 0x632BE59BD9B4E019L));
    }
    return h;
  }

  private static long splitMix(long z) {
    z += 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
