package dev.mosaic.spark.prior;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * TabPFN's MLP prior, a random structural causal model: independent causes feed 1–4 sparse random
 * layers; each node is its standardised weighted inputs through the layer's random activation
 * plus Gaussian noise. Features are read from random nodes (causes and hidden nodes alike), the
 * target from a node of the last layer that is not a feature, so features may be causes, effects
 * or siblings of the target.
 */
final class RandomMlpScm {
  private RandomMlpScm() {}

  static RawTable draw(SplittableRandom rnd, int rows, int features) {
    int layers = 1 + rnd.nextInt(4);
    int width = features + 1 + rnd.nextInt(features + 8);
    int causes = 1 + rnd.nextInt(Math.max(1, Math.min(width, features + 2)));
    double noise = logUniform(rnd, 1e-3, 0.5);
    double keep = 0.3 + 0.7 * rnd.nextDouble();
    List<double[]> nodes = new ArrayList<>();
    List<double[]> layer = new ArrayList<>();
    for (int c = 0; c < causes; c++) {
      layer.add(cause(rnd, rows));
    }
    nodes.addAll(layer);
    for (int l = 0; l < layers; l++) {
      Activation act = Activation.draw(rnd);
      List<double[]> next = new ArrayList<>();
      for (int j = 0; j < width; j++) {
        double[] z = new double[rows];
        int fanIn = layer.size();
        boolean any = false;
        for (int i = 0; i < fanIn; i++) {
          if (rnd.nextDouble() > keep && (any || i < fanIn - 1)) {
            continue; // sparse weights, but every node keeps at least one input
          }
          any = true;
          double w = rnd.nextGaussian() / Math.sqrt(fanIn);
          double[] in = layer.get(i);
          for (int r = 0; r < rows; r++) {
            z[r] += w * in[r];
          }
        }
        standardize(z);
        double[] a = new double[rows];
        for (int r = 0; r < rows; r++) {
          a[r] = act.apply(z[r]) + noise * rnd.nextGaussian();
        }
        next.add(a);
      }
      nodes.addAll(next);
      layer = next;
    }
    // The target: a random node of the last layer; features: other nodes at random.
    int lastStart = nodes.size() - layer.size();
    int target = lastStart + rnd.nextInt(layer.size());
    int[] order = permutation(rnd, nodes.size());
    double[][] cols = new double[features][];
    int k = 0;
    for (int i = 0; i < order.length && k < features; i++) {
      if (order[i] != target) {
        cols[k++] = nodes.get(order[i]);
      }
    }
    return new RawTable(cols, nodes.get(target));
  }

  /** A cause: Gaussian or uniform, with its own mean and spread. */
  private static double[] cause(SplittableRandom rnd, int rows) {
    double[] v = new double[rows];
    boolean uniform = rnd.nextBoolean();
    double mean = rnd.nextGaussian();
    double sd = logUniform(rnd, 0.1, 3);
    for (int r = 0; r < rows; r++) {
      v[r] = mean + sd * (uniform ? (rnd.nextDouble() * 2 - 1) * Math.sqrt(3) : rnd.nextGaussian());
    }
    return v;
  }

  static void standardize(double[] z) {
    double mean = 0;
    for (double v : z) {
      mean += v;
    }
    mean /= z.length;
    double var = 0;
    for (double v : z) {
      var += (v - mean) * (v - mean);
    }
    double sd = Math.sqrt(var / z.length);
    double inv = sd > 1e-12 ? 1 / sd : 1;
    for (int r = 0; r < z.length; r++) {
      z[r] = (z[r] - mean) * inv;
    }
  }

  static double logUniform(SplittableRandom rnd, double lo, double hi) {
    return Math.exp(Math.log(lo) + rnd.nextDouble() * (Math.log(hi) - Math.log(lo)));
  }

  static int[] permutation(SplittableRandom rnd, int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = rnd.nextInt(i + 1);
      int t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
