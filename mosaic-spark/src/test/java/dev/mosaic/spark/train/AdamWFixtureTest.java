package dev.mosaic.spark.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * AdamW, the warm-up + cosine schedule and global-norm clipping against PyTorch
 * ({@code tools/fixtures/optimizer_fixtures.py}: torch.optim.AdamW, SequentialLR(LinearLR,
 * CosineAnnealingLR), clip_grad_norm_), step by step over 9 steps.
 *
 * <p>Tolerances: both sides run the update in fp32, with the scalars (bias corrections, step
 * size) in double; they differ only where PyTorch fuses a multiply-add, about one rounding
 * (2^-24 relative) per operation. A parameter passes through ~6 roundings per step, so after
 * t steps the parameters agree to ~6·t·2^-24·|p| ≈ 3.2e-6·|p| at t = 9; we allow
 * {@code 4e-6·max(1, |p|)}. A semantic slip is far larger: coupled weight decay, a missing bias
 * correction or ε under the root (the fixture's tiny-gradient parameter) moves a parameter by
 * ~1e-4 or more per step.
 */
class AdamWFixtureTest {
  private static final Map<String, Tensor> F = Safetensors.read(path());
  private static final Map<String, String> META = Safetensors.metadata(path());
  private static final List<String> NAMES = List.of(META.get("names").split(","));
  private static final int STEPS = Integer.parseInt(META.get("steps"));

  private static Path path() {
    try {
      return Path.of(AdamWFixtureTest.class.getResource("/fixtures/train/adamw.safetensors")
          .toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture adamw.safetensors is not on the test classpath", e);
    }
  }

  private static double meta(String key) {
    return Double.parseDouble(META.get(key));
  }

  private static LearningRateSchedule schedule() {
    return new LearningRateSchedule(meta("lr"), (int) meta("warmup"), (long) meta("total"),
        meta("min_lr"));
  }

  private static Map<String, Tensor> tensors(String prefix) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    for (String n : NAMES) {
      m.put(n, F.get(prefix + n).copy());
    }
    return m;
  }

  @Test
  void scheduleEqualsPyTorchsSequentialLr() {
    String[] exact = META.get("lr_exact").split(",");
    LearningRateSchedule s = schedule();
    for (int t = 0; t < STEPS; t++) {
      double expected = Double.parseDouble(exact[t]);
      assertEquals(expected, s.at(t), 1e-12 * expected, "lr at step " + t);
    }
    assertEquals(meta("min_lr"), s.at(1_000), 0.0, "past the end the schedule stays at min");
  }

  @Test
  void clippingEqualsClipGradNorm() {
    double maxNorm = meta("max_norm");
    float[] norms = F.get("grad_norm").data();
    int clipped = 0;
    for (int t = 0; t < STEPS; t++) {
      Map<String, Tensor> g = tensors("grad." + t + ".");
      double norm = GradientClipping.clipGlobalNorm(g.values(), maxNorm);
      // PyTorch sums the squares in fp32: ~1e-7 relative.
      assertEquals(norms[t], norm, 1e-6 * norms[t], "norm at step " + t);
      clipped += norm > maxNorm ? 1 : 0;
      for (String n : NAMES) {
        assertClose(F.get("clipped." + t + "." + n), g.get(n), 1e-6, "clipped grad " + n);
      }
    }
    assertTrue(clipped > 0 && clipped < STEPS, "the fixture must clip some steps, not all");
  }

  @Test
  void adamWStepsEqualPyTorch() {
    AdamWSettings settings = new AdamWSettings(meta("beta1"), meta("beta2"), meta("eps"),
        meta("weight_decay"));
    AdamW opt = new AdamW(settings);
    Map<String, Tensor> params = tensors("init.");
    LearningRateSchedule s = schedule();
    for (int t = 0; t < STEPS; t++) {
      Map<String, Tensor> g = tensors("grad." + t + ".");
      GradientClipping.clipGlobalNorm(g.values(), meta("max_norm"));
      opt.step(params, g, s.at(t));
      for (String n : NAMES) {
        assertClose(F.get("after." + t + "." + n), params.get(n), 4e-6,
            "param " + n + " after step " + t);
      }
    }
    assertEquals(STEPS, opt.steps());
    for (String n : NAMES) {
      assertClose(F.get("exp_avg." + n), opt.expAvg().get(n), 4e-6, "exp_avg " + n);
      assertClose(F.get("exp_avg_sq." + n), opt.expAvgSq().get(n), 4e-6, "exp_avg_sq " + n);
    }
  }

  /**
   * |e − a| ≤ tol·max(min(1, max|e|), |e|) elementwise: relative for entries of magnitude 1 and
   * above, relative to the tensor's scale below that (the moments are small).
   */
  static void assertClose(Tensor expected, Tensor actual, double tol, String what) {
    float[] e = expected.data();
    float[] a = actual.data();
    assertEquals(e.length, a.length, what + ": size");
    double scale = 0;
    for (float v : e) {
      scale = Math.max(scale, Math.abs(v));
    }
    for (int i = 0; i < e.length; i++) {
      double bound = tol * Math.max(Math.min(1, scale), Math.abs(e[i]));
      assertTrue(Math.abs(e[i] - a[i]) <= bound, what + "[" + i + "]: expected " + e[i]
          + ", got " + a[i] + " (tolerance " + bound + ")");
    }
  }
}
