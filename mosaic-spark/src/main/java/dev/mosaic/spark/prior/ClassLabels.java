package dev.mosaic.spark.prior;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Cuts a continuous target into classes at random quantiles, in a random class order. */
final class ClassLabels {
  private ClassLabels() {}

  /**
   * Class ids {@code 0..classes−1}, every class non-empty: rows sorted by target are cut at
   * random cumulative proportions (each class's weight {@code 0.3 + Exp(1)}, so no class is
   * vanishingly rare), then the class ids are permuted so that id order says nothing about the
   * target's order.
   */
  static int[] cut(SplittableRandom rnd, double[] target, int classes) {
    int rows = target.length;
    double[] weights = new double[classes];
    double sum = 0;
    for (int c = 0; c < classes; c++) {
      weights[c] = 0.3 - Math.log(1 - rnd.nextDouble());
      sum += weights[c];
    }
    int[] perm = RandomMlpScm.permutation(rnd, classes);
    Integer[] byTarget = new Integer[rows];
    for (int r = 0; r < rows; r++) {
      byTarget[r] = r;
    }
    // Ties (a step-shaped target) keep row order: stable, so the cut stays deterministic.
    Arrays.sort(byTarget, (a, b) -> Double.compare(target[a], target[b]));
    int[] labels = new int[rows];
    double cum = 0;
    int start = 0;
    for (int c = 0; c < classes; c++) {
      cum += weights[c];
      int end = c == classes - 1 ? rows : (int) Math.round(cum / sum * rows);
      end = Math.max(end, start + 1);                 // every class gets a row
      end = Math.min(end, rows - (classes - 1 - c));   // and leaves one for each class after it
      for (int i = start; i < end; i++) {
        labels[byTarget[i]] = perm[c];
      }
      start = end;
    }
    return labels;
  }
}
