package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The merge alone, against softmax over the union computed directly in double precision. */
class LseMergeTest {
  private final Random rnd = TestSeed.random();

  /** One partial: (normalised output, lse) of `scores` over `values` rows. */
  private record Partial(float[] out, float lse) {}

  private static Partial partial(double[] scores, double[][] values, int dim) {
    double max = Double.NEGATIVE_INFINITY;
    for (double s : scores) {
      max = Math.max(max, s);
    }
    float[] out = new float[dim];
    if (max == Double.NEGATIVE_INFINITY) {
      return new Partial(out, Float.NEGATIVE_INFINITY);
    }
    double sum = 0;
    double[] acc = new double[dim];
    for (int j = 0; j < scores.length; j++) {
      double p = Math.exp(scores[j] - max);
      sum += p;
      for (int c = 0; c < dim; c++) {
        acc[c] += p * values[j][c];
      }
    }
    for (int c = 0; c < dim; c++) {
      out[c] = (float) (acc[c] / sum);
    }
    return new Partial(out, (float) (max + Math.log(sum)));
  }

  @Test
  void mergingBlocksInAnyOrderEqualsTheWhole() {
    int dim = 16;
    int n = 400;
    double[] scores = new double[n];
    double[][] values = new double[n][dim];
    for (int j = 0; j < n; j++) {
      scores[j] = rnd.nextGaussian() * 8;
      for (int c = 0; c < dim; c++) {
        values[j][c] = rnd.nextGaussian();
      }
    }
    Partial whole = partial(scores, values, dim);
    List<Integer> cuts = new ArrayList<>(List.of(0, n));
    for (int i = 0; i < 6; i++) {
      cuts.add(1 + rnd.nextInt(n - 1));
    }
    Collections.sort(cuts);
    List<Partial> parts = new ArrayList<>();
    for (int i = 0; i + 1 < cuts.size(); i++) {
      int a = cuts.get(i);
      int b = cuts.get(i + 1);
      double[] s = java.util.Arrays.copyOfRange(scores, a, b);
      double[][] v = java.util.Arrays.copyOfRange(values, a, b);
      parts.add(partial(s, v, dim));
    }
    MergeBound bound = MergeBound.of(parts, whole);
    for (int order = 0; order < 5; order++) {
      Collections.shuffle(parts, rnd);
      float[] o = new float[dim];
      float[] lse = {Float.NEGATIVE_INFINITY};
      for (Partial p : parts) {
        LseMerge.mergeRow(o, 0, lse, 0, p.out(), 0, p.lse(), dim);
      }
      Accuracy.assertClose(o, whole.out(), bound.output(), "merged output, order " + order);
      assertEquals(whole.lse(), lse[0], bound.lse(), "merged lse, order " + order);
    }
  }

  /**
   * The fp32 error model of merging m partials one after the other (LseMerge.mergeRow), as bounds
   * on the merged output's relative L2 error and on the merged lse's absolute error. With u the
   * fp32 unit roundoff, L the largest |lse| (partials and whole: every running lse lies between),
   * D the widest distance between two partial outputs and M the largest partial output norm
   * (every running output is a convex combination of partials, so these bound theirs too):
   *
   * <ul>
   *   <li>2m−1 lse values are stored in fp32 (m partials, m−1 running sums), each off by up to L·u.
   *       Shifting the lse of a group of partials by δ moves the final output by W(1−W)·δ times
   *       the distance between that group's output and the rest's, so by at most δ·D/4, and the
   *       final lse by at most δ.
   *   <li>each of the m−1 merges rounds its weight w = σ(ℓ_b − ℓ) (moving the output by up to u·D)
   *       and computes o − w·(o − o_b) with three fp32 roundings (up to u·(2D + M)); later merges
   *       scale earlier errors by 1 − w ≤ 1, so errors add up and never grow.
   *   <li>the partial outputs and the reference itself are rounded to fp32 once (u·M each).
   * </ul>
   *
   * Both bounds are doubled to cover second-order terms. A wrong merge formula misses by orders of
   * magnitude more (errors of order 1).
   */
  private record MergeBound(double output, double lse) {
    static MergeBound of(List<Partial> all, Partial whole) {
      // An empty block (two equal cuts) has lse -inf: merging it changes nothing, exactly.
      List<Partial> parts = all.stream().filter(p -> p.lse() != Float.NEGATIVE_INFINITY).toList();
      int m = parts.size();
      double big = Math.abs(whole.lse());
      double widest = 0;
      double largest = norm(whole.out());
      for (Partial p : parts) {
        big = Math.max(big, Math.abs(p.lse()));
        largest = Math.max(largest, norm(p.out()));
        for (Partial q : parts) {
          widest = Math.max(widest, distance(p.out(), q.out()));
        }
      }
      double u = Accuracy.FP32_U;
      double storedLse = (2 * m - 1) * big * u;
      double absolute = storedLse * widest / 4 + (m - 1) * u * (3 * widest + largest)
          + 2 * u * largest;
      return new MergeBound(2 * absolute / norm(whole.out()), 2 * (storedLse + big * u));
    }

    private static double norm(float[] x) {
      return distance(x, new float[x.length]);
    }

    private static double distance(float[] x, float[] y) {
      double sum = 0;
      for (int i = 0; i < x.length; i++) {
        double d = (double) x[i] - y[i];
        sum += d * d;
      }
      return Math.sqrt(sum);
    }
  }

  @Test
  void minusInfinityPartialsChangeNothing() {
    float[] o = {1f, -2f, 3f};
    float[] lse = {0.5f};
    LseMerge.mergeRow(o, 0, lse, 0, new float[] {9f, 9f, 9f}, 0, Float.NEGATIVE_INFINITY, 3);
    assertEquals(0.5f, lse[0]);
    assertEquals(1f, o[0]);
    assertEquals(-2f, o[1]);
    // and the other way round: an empty accumulator takes the partial as it is
    float[] empty = {0f, 0f, 0f};
    float[] emptyLse = {Float.NEGATIVE_INFINITY};
    LseMerge.mergeRow(empty, 0, emptyLse, 0, new float[] {4f, 5f, 6f}, 0, 2f, 3);
    assertEquals(2f, emptyLse[0]);
    assertEquals(5f, empty[1]);
    // both empty: stays empty, no NaN
    float[] none = {0f};
    float[] noneLse = {Float.NEGATIVE_INFINITY};
    LseMerge.mergeRow(none, 0, noneLse, 0, new float[] {0f}, 0, Float.NEGATIVE_INFINITY, 1);
    assertEquals(Float.NEGATIVE_INFINITY, noneLse[0]);
    assertFalse(Float.isNaN(none[0]));
  }

  @Test
  void extremeLseDifferencesStayFinite() {
    float[] o = {1f};
    float[] lse = {1000f};
    LseMerge.mergeRow(o, 0, lse, 0, new float[] {-1f}, 0, -1000f, 1);
    assertEquals(1f, o[0]);
    assertEquals(1000f, lse[0]);
    LseMerge.mergeRow(o, 0, lse, 0, new float[] {-1f}, 0, 5000f, 1);
    assertEquals(-1f, o[0]);
    assertEquals(5000f, lse[0]);
  }
}
