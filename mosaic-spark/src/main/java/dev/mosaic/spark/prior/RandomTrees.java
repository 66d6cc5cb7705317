package dev.mosaic.spark.prior;

import java.util.SplittableRandom;

/**
 * The tree component: independent features (Gaussian, uniform, log-normal or a few integer
 * levels), and a target that is the sum of 1–3 random axis-aligned decision trees (depth 1–5,
 * split thresholds at the values of random rows, Gaussian leaves) over a random subset of the
 * features, plus noise. Gives the step-shaped, interaction-heavy targets an MLP rarely draws.
 */
final class RandomTrees {
  private RandomTrees() {}

  static RawTable draw(SplittableRandom rnd, int rows, int features) {
    double[][] cols = new double[features][];
    for (int f = 0; f < features; f++) {
      cols[f] = column(rnd, rows);
    }
    int relevant = 1 + rnd.nextInt(Math.min(features, 6));
    int[] used = RandomMlpScm.permutation(rnd, features);
    double[] target = new double[rows];
    int trees = 1 + rnd.nextInt(3);
    for (int t = 0; t < trees; t++) {
      int depth = 1 + rnd.nextInt(5);
      Node root = grow(rnd, cols, used, relevant, depth, rows);
      for (int r = 0; r < rows; r++) {
        target[r] += root.eval(cols, r);
      }
    }
    double noise = RandomMlpScm.logUniform(rnd, 1e-3, 0.3);
    for (int r = 0; r < rows; r++) {
      target[r] += noise * rnd.nextGaussian();
    }
    return new RawTable(cols, target);
  }

  private static double[] column(SplittableRandom rnd, int rows) {
    double[] v = new double[rows];
    int kind = rnd.nextInt(4);
    int levels = 2 + rnd.nextInt(6);
    for (int r = 0; r < rows; r++) {
      v[r] = switch (kind) {
        case 0 -> rnd.nextGaussian();
        case 1 -> rnd.nextDouble();
        case 2 -> Math.exp(rnd.nextGaussian());
        default -> rnd.nextInt(levels);
      };
    }
    return v;
  }

  private static Node grow(SplittableRandom rnd, double[][] cols, int[] used, int relevant,
      int depth, int rows) {
    if (depth == 0) {
      return new Node(-1, 0, rnd.nextGaussian(), null, null);
    }
    int f = used[rnd.nextInt(relevant)];
    double threshold = cols[f][rnd.nextInt(rows)];
    return new Node(f, threshold, 0, grow(rnd, cols, used, relevant, depth - 1, rows),
        grow(rnd, cols, used, relevant, depth - 1, rows));
  }

  private record Node(int feature, double threshold, double value, Node left, Node right) {
    double eval(double[][] cols, int r) {
      Node n = this;
      while (n.feature >= 0) {
        n = cols[n.feature][r] <= n.threshold ? n.left : n.right;
      }
      return n.value;
    }
  }
}
