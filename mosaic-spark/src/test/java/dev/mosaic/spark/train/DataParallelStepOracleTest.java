package dev.mosaic.spark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.prior.PriorSizes;
import dev.mosaic.spark.strategy.ThreadRanks;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Whole data-parallel pretraining steps ({@link DataParallelStep}: each rank's tables through
 * forward and backward, the gradient sums all-reduced over 2 TCP ranks and averaged, clipped,
 * AdamW at the schedule's rate) against PyTorch ({@code tools/fixtures/train_step_fixtures.py}:
 * the same model and fixed tables in float64, clip_grad_norm_, torch.optim.AdamW). Two steps: the
 * first clips and is AdamW's first (m̂ = g), the second does not clip and is AdamW's second, at
 * twice the first's learning rate (warm-up). Each step starts from the reference state before it
 * (weights and moments, as fp32), so each is held to one step's fp32 error.
 *
 * <p>Error model. The reference is exact next to fp32. Java's per-table gradients are fp32 forward
 * and backward (about a hundred roundings of 2^-24 along the longest path); NanoTabPfnBackwardTest
 * measures at most 8.5e-6 relative, norm-wise per tensor, on a two-block model, and we allow
 * {@code DELTA = 1e-5} relative for the loss, the norm before clipping and every gradient tensor
 * norm-wise (an entry's error is at most the error vector's norm). The clip coefficient
 * carries the norm's error, so each entry of the clipped mean gradient of tensor T is off by at most
 * {@code G = 2·DELTA·‖g_T‖}. Everything after the gradient follows from G with AdamW's formulas:
 * <ul>
 *   <li>{@code m = β1·m' + (1−β1)·g}: off by (1−β1)·G;
 *   <li>{@code v = β2·v' + (1−β2)·g²}: off by (1−β2)·(2|g|·G + G²);
 *   <li>the update {@code u = m̂/(√v̂ + ε)}: off by δm̂/(s₋ + ε) + |m̂|·δs/((s₋ + ε)(s + ε)) where
 *       {@code s = √v̂}, δs ≤ min(√δv̂, δv̂/s) and s₋ = max(0, s − δs); and never by more than
 *       |u| + U(t), U(t) the largest |m̂/√v̂| any gradients give at step t (Cauchy–Schwarz), which is
 *       the bound where the gradient is within G of 0 and its sign is noise (the attention's key
 *       bias has exactly zero gradient);
 *   <li>the weights {@code p·(1 − lr·λ) − lr·u}: off by lr·δu;
 * </ul>
 * each plus 4 ulps (2^-23 relative each) of the value itself for the fp32 arithmetic and storage.
 * A wiring slip is far outside these: a missed rank or table, a sum not divided by the batch, the
 * wrong step's learning rate or bias correction moves the loss, the moments or nearly every weight
 * by a relative 1e-1 or more; {@link #aStepAtTheOtherStepsLearningRateFallsOutsideTheBounds}
 * checks that the weight bounds see such a slip. (Measured: errors within 0.2 of the bounds for
 * the weights, 0.05 for the moments; the bounds' median is under 1% of the learning rate.)
 */
class DataParallelStepOracleTest {
  private static final double DELTA = 1e-5;
  private static final double ROUNDING = 4 * Math.ulp(1f); // 4 ulps of the value, relative
  private static final Map<String, Tensor> F = Safetensors.read(path());
  private static final Map<String, String> META = Safetensors.metadata(path());
  private static final List<String> NAMES = List.of(META.get("names").split(","));
  private static final int STEPS = Integer.parseInt(META.get("steps"));
  private static final int BATCH = Integer.parseInt(META.get("batch"));

  private static Path path() {
    try {
      return Path.of(DataParallelStepOracleTest.class
          .getResource("/fixtures/train/data_parallel_step.safetensors").toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException(
          "fixture data_parallel_step.safetensors is not on the test classpath", e);
    }
  }

  private static double meta(String key) {
    return Double.parseDouble(META.get(key));
  }

  private static int metaInt(String key) {
    return Integer.parseInt(META.get(key));
  }

  private static AdamWSettings adamW() {
    return new AdamWSettings(meta("beta1"), meta("beta2"), meta("eps"), meta("weight_decay"));
  }

  private static PretrainSettings settings() {
    NanoTabPfnShape shape = new NanoTabPfnShape(metaInt("embed"), metaInt("heads"),
        metaInt("layers"), metaInt("hidden"), metaInt("outputs"));
    LearningRateSchedule schedule = new LearningRateSchedule(meta("lr"), metaInt("warmup"),
        (long) meta("total"), meta("min_lr"));
    // The prior's sizes and seed are unused: the tables are the fixture's.
    PriorSizes sizes = new PriorSizes(12, 40, 6, shape.outputs());
    return new PretrainSettings(shape, STEPS, BATCH, adamW(), schedule, meta("clip"), 1, sizes,
        sizes, 0, 1);
  }

  /** The fixture's tables: slot k of step s is {@code table.s.k}. */
  private static final DataParallelStep.Tables TABLES = new DataParallelStep.Tables() {
    @Override
    public int[] size(long step, int slot) {
      int[] shape = F.get("table." + step + "." + slot + ".x").shape();
      return new int[] {shape[0], shape[1]};
    }

    @Override
    public PriorDataset table(long step, int slot) {
      String key = "table." + step + "." + slot;
      Tensor x = F.get(key + ".x");
      float[] y = F.get(key + ".y").data().clone();
      int nTrain = metaInt(key + ".n_train");
      int classes = 0;
      for (int i = 0; i < nTrain; i++) {
        classes = Math.max(classes, (int) y[i] + 1);
      }
      return new PriorDataset(x.data().clone(), y, x.dim(0), x.dim(1), classes, nTrain,
          "fixture");
    }
  };

  /** What one rank holds after a step. */
  private record RankResult(StepRecord record, Map<String, Tensor> params,
      Map<String, Tensor> expAvg, Map<String, Tensor> expAvgSq, int tables) {}

  private static Map<String, Tensor> tensors(String prefix) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    for (String n : NAMES) {
      m.put(n, F.get(prefix + n).copy());
    }
    return m;
  }

  /** Step {@code step} on 2 TCP ranks from the reference state before it. */
  private static List<RankResult> runStep(int step) throws Exception {
    PretrainSettings s = settings();
    return ThreadRanks.run(2, comm -> {
      Map<String, Tensor> params = tensors(step == 0 ? "init." : "after." + (step - 1) + ".");
      AdamW opt = step == 0 ? new AdamW(s.adamW())
          : AdamW.restore(s.adamW(), step, tensors("exp_avg." + (step - 1) + "."),
              tensors("exp_avg_sq." + (step - 1) + "."));
      StepRecord r = DataParallelStep.run(s, TABLES, step, params, opt, comm, 1);
      int tables = DataParallelStep.slotsOf(comm.rank(), comm.size(), TABLES, step, BATCH).size();
      return new RankResult(r, params, opt.expAvg(), opt.expAvgSq(), tables);
    });
  }

  /** Per-entry bounds of one step, from the reference state after it (see the class comment). */
  private static final class Bounds {
    final Map<String, double[]> m = new LinkedHashMap<>();
    final Map<String, double[]> v = new LinkedHashMap<>();
    final Map<String, double[]> p = new LinkedHashMap<>();

    Bounds(int step) {
      double b1 = meta("beta1");
      double b2 = meta("beta2");
      double eps = meta("eps");
      int t = step + 1; // AdamW's step count
      double bias1 = 1 - Math.pow(b1, t);
      double bias2 = 1 - Math.pow(b2, t);
      double lr = expectedLr(step);
      double uMax = largestUpdate(b1, b2, t);
      for (String n : NAMES) {
        float[] m1 = F.get("exp_avg." + step + "." + n).data();
        float[] v1 = F.get("exp_avg_sq." + step + "." + n).data();
        float[] m0 = step == 0 ? new float[m1.length]
            : F.get("exp_avg." + (step - 1) + "." + n).data();
        float[] p1 = F.get("after." + step + "." + n).data();
        double[] g = new double[m1.length];
        double norm = 0;
        for (int i = 0; i < g.length; i++) {
          g[i] = (m1[i] - b1 * m0[i]) / (1 - b1); // the reference's clipped gradient
          norm += g[i] * g[i];
        }
        double gErr = 2 * DELTA * Math.sqrt(norm);
        double[] bm = new double[g.length];
        double[] bv = new double[g.length];
        double[] bp = new double[g.length];
        for (int i = 0; i < g.length; i++) {
          double dm = (1 - b1) * gErr;
          double dv = (1 - b2) * (2 * (Math.abs(g[i]) + gErr) * gErr + gErr * gErr);
          bm[i] = dm + ROUNDING * Math.abs(m1[i]);
          bv[i] = dv + ROUNDING * v1[i];
          double mHat = m1[i] / bias1;
          double s = Math.sqrt(v1[i] / bias2);
          double u = mHat / (s + eps);
          double dvHat = (dv + ROUNDING * v1[i]) / bias2;
          double ds = s > 0 ? Math.min(Math.sqrt(dvHat), dvHat / s) : Math.sqrt(dvHat);
          double sLow = Math.max(0, s - ds);
          double du = (dm / bias1) / (sLow + eps)
              + Math.abs(mHat) * ds / ((sLow + eps) * (s + eps));
          du = Math.min(du, Math.abs(u) + uMax);
          bp[i] = lr * (du + ROUNDING * Math.abs(u)) + ROUNDING * Math.abs(p1[i]);
        }
        m.put(n, bm);
        v.put(n, bv);
        p.put(n, bp);
      }
    }
  }

  /**
   * U(t): the largest |m̂/√v̂| after t steps of any gradients, by Cauchy–Schwarz
   * {@code sqrt(Σ a_k²/b_k)} with m̂ = Σ a_k·g_k and v̂ = Σ b_k·g_k² (1 at t = 1).
   */
  static double largestUpdate(double b1, double b2, int t) {
    double sum = 0;
    for (int k = 1; k <= t; k++) {
      double a = (1 - b1) * Math.pow(b1, t - k) / (1 - Math.pow(b1, t));
      double b = (1 - b2) * Math.pow(b2, t - k) / (1 - Math.pow(b2, t));
      sum += a * a / b;
    }
    return Math.sqrt(sum);
  }

  private static double expectedLr(int step) {
    return meta("lr." + step);
  }

  @Test
  void twoStepsOverTwoTcpRanksEqualPyTorch() throws Exception {
    for (int step = 0; step < STEPS; step++) {
      List<RankResult> ranks = runStep(step);
      RankResult a = ranks.get(0);
      RankResult b = ranks.get(1);
      assertEquals(BATCH, a.tables() + b.tables(), "every table on one rank");
      assertTrue(a.tables() > 0 && b.tables() > 0, "both ranks compute");
      // The all-reduce gives every rank the same sums: the ranks end bit-identical.
      assertEquals(a.record().loss(), b.record().loss(), 0.0, "loss on both ranks");
      for (String n : NAMES) {
        assertArrayEquals(a.params().get(n).data(), b.params().get(n).data(), "rank 1's " + n);
        assertArrayEquals(a.expAvg().get(n).data(), b.expAvg().get(n).data(),
            "rank 1's exp_avg " + n);
        assertArrayEquals(a.expAvgSq().get(n).data(), b.expAvgSq().get(n).data(),
            "rank 1's exp_avg_sq " + n);
      }

      StepRecord r = a.record();
      String at = " at step " + step;
      double loss = meta("loss." + step);
      double norm = meta("grad_norm." + step);
      assertEquals(step, r.step());
      assertEquals(loss, r.loss(), DELTA * loss, "loss" + at);
      assertEquals(norm, r.gradNorm(), DELTA * norm, "gradient norm before clipping" + at);
      assertEquals(expectedLr(step), r.lr(), 1e-12 * expectedLr(step), "learning rate" + at);
      assertEquals(step == 0, r.gradNorm() > meta("clip"), "the first step clips, not the second");

      Bounds bounds = new Bounds(step);
      for (String n : NAMES) {
        assertWithin(F.get("exp_avg." + step + "." + n), a.expAvg().get(n), bounds.m.get(n),
            "exp_avg " + n + at);
        assertWithin(F.get("exp_avg_sq." + step + "." + n), a.expAvgSq().get(n),
            bounds.v.get(n), "exp_avg_sq " + n + at);
        assertWithin(F.get("after." + step + "." + n), a.params().get(n), bounds.p.get(n),
            n + " after step " + step);
      }
    }
  }

  /**
   * The weight bounds are sharp enough to see a slip: the reference update taken at the other
   * step's learning rate (half or twice this one's) falls outside them on most entries. Only
   * entries whose gradient is within G of 0 (their update's sign is noise), or much smaller than
   * their tensor's norm, have bounds near lr.
   */
  @Test
  void aStepAtTheOtherStepsLearningRateFallsOutsideTheBounds() {
    double b1 = meta("beta1");
    double b2 = meta("beta2");
    double eps = meta("eps");
    double decay = meta("weight_decay");
    for (int step = 0; step < STEPS; step++) {
      Bounds bounds = new Bounds(step);
      int t = step + 1;
      double wrongLr = expectedLr(STEPS - 1 - step);
      assertTrue(wrongLr != expectedLr(step), "the fixture's two steps have different rates");
      int outside = 0;
      int total = 0;
      for (String n : NAMES) {
        float[] before = F.get((step == 0 ? "init." : "after." + (step - 1) + ".") + n).data();
        float[] after = F.get("after." + step + "." + n).data();
        float[] m = F.get("exp_avg." + step + "." + n).data();
        float[] v = F.get("exp_avg_sq." + step + "." + n).data();
        double[] bound = bounds.p.get(n);
        for (int i = 0; i < after.length; i++) {
          double u = m[i] / (1 - Math.pow(b1, t))
              / (Math.sqrt(v[i] / (1 - Math.pow(b2, t))) + eps);
          double wrong = before[i] * (1 - wrongLr * decay) - wrongLr * u;
          outside += Math.abs(wrong - after[i]) > bound[i] ? 1 : 0;
          total++;
        }
      }
      assertTrue(outside >= 0.8 * total, "step " + step + ": only " + outside + " of " + total
          + " weights would catch the other step's learning rate");
    }
  }

  private static void assertWithin(Tensor expected, Tensor actual, double[] bound, String what) {
    float[] e = expected.data();
    float[] a = actual.data();
    assertEquals(e.length, a.length, what + ": size");
    for (int i = 0; i < e.length; i++) {
      double err = Math.abs((double) e[i] - a[i]);
      if (!(err <= bound[i])) {
        throw new AssertionError(what + "[" + i + "]: expected " + e[i] + ", got " + a[i]
            + " (error " + err + ", bound " + bound[i] + "; entries " + e.length + ", "
            + Arrays.toString(expected.shape()) + ")");
      }
    }
  }
}
