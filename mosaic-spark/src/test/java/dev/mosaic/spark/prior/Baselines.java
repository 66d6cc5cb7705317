package dev.mosaic.spark.prior;

/** Simple classifiers for the prior's learnability test, written here to depend on nothing. */
final class Baselines {
  private Baselines() {}

  /** Test accuracy of always predicting the train rows' most frequent class. */
  static double majority(PriorDataset d) {
    int[] count = new int[d.classes()];
    for (int i = 0; i < d.nTrain(); i++) {
      count[(int) d.y()[i]]++;
    }
    int best = 0;
    for (int c = 1; c < count.length; c++) {
      if (count[c] > count[best]) {
        best = c;
      }
    }
    int right = 0;
    for (int i = d.nTrain(); i < d.rows(); i++) {
      right += (int) d.y()[i] == best ? 1 : 0;
    }
    return (double) right / (d.rows() - d.nTrain());
  }

  /**
   * Test accuracy of k-nearest neighbours (Euclidean, on features standardised with the train
   * rows' mean and std; a tied vote goes to the class of the nearest among the tied).
   */
  static double knn(PriorDataset d, int k) {
    int f = d.features();
    double[] z = standardized(d);
    int right = 0;
    int kk = Math.min(k, d.nTrain());
    for (int t = d.nTrain(); t < d.rows(); t++) {
      int[] nearest = new int[kk];
      double[] dist = new double[kk];
      java.util.Arrays.fill(dist, Double.POSITIVE_INFINITY);
      for (int i = 0; i < d.nTrain(); i++) {
        double s = 0;
        for (int j = 0; j < f; j++) {
          double diff = z[t * f + j] - z[i * f + j];
          s += diff * diff;
        }
        // insertion into the sorted k best
        int pos = kk;
        while (pos > 0 && s < dist[pos - 1]) {
          pos--;
        }
        if (pos < kk) {
          System.arraycopy(dist, pos, dist, pos + 1, kk - pos - 1);
          System.arraycopy(nearest, pos, nearest, pos + 1, kk - pos - 1);
          dist[pos] = s;
          nearest[pos] = i;
        }
      }
      int[] votes = new int[d.classes()];
      int best = (int) d.y()[nearest[0]];
      for (int n : nearest) {
        int c = (int) d.y()[n];
        votes[c]++;
        if (votes[c] > votes[best]) {
          best = c;
        }
      }
      right += best == (int) d.y()[t] ? 1 : 0;
    }
    return (double) right / (d.rows() - d.nTrain());
  }

  private static double[] standardized(PriorDataset d) {
    int f = d.features();
    double[] z = new double[d.rows() * f];
    for (int j = 0; j < f; j++) {
      double mean = 0;
      for (int i = 0; i < d.nTrain(); i++) {
        mean += d.x()[i * f + j];
      }
      mean /= d.nTrain();
      double var = 0;
      for (int i = 0; i < d.nTrain(); i++) {
        double v = d.x()[i * f + j] - mean;
        var += v * v;
      }
      double sd = Math.sqrt(var / d.nTrain());
      double inv = sd > 1e-12 ? 1 / sd : 1;
      for (int i = 0; i < d.rows(); i++) {
        z[i * f + j] = (d.x()[i * f + j] - mean) * inv;
      }
    }
    return z;
  }
}
