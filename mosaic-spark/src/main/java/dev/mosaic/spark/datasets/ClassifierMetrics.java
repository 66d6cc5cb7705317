package dev.mosaic.spark.datasets;

import java.util.Arrays;

/**
 * Accuracy and ROC AUC from class probabilities {@code (tests, classes)} row-major. The AUC of a
 * binary problem is the usual one (of the positive class's probability); with more classes it is
 * the one-vs-rest macro average (scikit-learn's {@code roc_auc_score(multi_class="ovr",
 * average="macro")}). Each AUC is the Mann–Whitney statistic, ties counting one half.
 */
public final class ClassifierMetrics {
  private ClassifierMetrics() {}

  /** The fraction of rows whose most probable class (the first on ties) is the label. */
  public static double accuracy(float[] probabilities, int classes, int[] labels) {
    int right = 0;
    for (int r = 0; r < labels.length; r++) {
      int best = 0;
      for (int c = 1; c < classes; c++) {
        if (probabilities[r * classes + c] > probabilities[r * classes + best]) {
          best = c;
        }
      }
      right += best == labels[r] ? 1 : 0;
    }
    return (double) right / labels.length;
  }

  /**
   * ROC AUC: binary for two classes, else the macro mean over the classes that occur among the
   * labels (a class without positives or without negatives has no AUC; NaN if none has one).
   */
  public static double rocAuc(float[] probabilities, int classes, int[] labels) {
    if (classes == 2) {
      return auc(column(probabilities, classes, 1), labels, 1);
    }
    double sum = 0;
    int n = 0;
    for (int c = 0; c < classes; c++) {
      double a = auc(column(probabilities, classes, c), labels, c);
      if (!Double.isNaN(a)) {
        sum += a;
        n++;
      }
    }
    return n == 0 ? Double.NaN : sum / n;
  }

  private static double[] column(float[] p, int classes, int c) {
    double[] s = new double[p.length / classes];
    for (int r = 0; r < s.length; r++) {
      s[r] = p[r * classes + c];
    }
    return s;
  }

  /** P(score of a random positive > score of a random negative) + ½·P(equal), by ranks. */
  static double auc(double[] scores, int[] labels, int positive) {
    int n = scores.length;
    Integer[] idx = new Integer[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    Arrays.sort(idx, (a, b) -> Double.compare(scores[a], scores[b]));
    double rankSumPos = 0;
    long pos = 0;
    int i = 0;
    while (i < n) {
      int j = i;
      while (j + 1 < n && scores[idx[j + 1]] == scores[idx[i]]) {
        j++;
      }
      double midRank = (i + j) / 2.0 + 1; // 1-based average rank of the tie group
      for (int k = i; k <= j; k++) {
        if (labels[idx[k]] == positive) {
          rankSumPos += midRank;
          pos++;
        }
      }
      i = j + 1;
    }
    long neg = n - pos;
    if (pos == 0 || neg == 0) {
      return Double.NaN;
    }
    return (rankSumPos - pos * (pos + 1) / 2.0) / ((double) pos * neg);
  }
}
