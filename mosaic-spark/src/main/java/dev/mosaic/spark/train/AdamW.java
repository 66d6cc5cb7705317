package dev.mosaic.spark.train;

import dev.mosaic.kernels.Tensor;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW over named tensors with {@code torch.optim.AdamW}'s semantics (no amsgrad): per step
 * {@code t} (1-based), in fp32 as PyTorch does,
 *
 * <pre>
 *   p ← p·(1 − lr·λ)                       decoupled weight decay
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)   bias-corrected, ε outside the root
 * </pre>
 *
 * The moments are kept per parameter name, created (zero) on a parameter's first step; state
 * can be saved and restored ({@link TrainingCheckpoint}) so that a resumed run continues exactly.
 */
public final class AdamW {
  private final AdamWSettings settings;
  private final Map<String, Tensor> expAvg = new LinkedHashMap<>();
  private final Map<String, Tensor> expAvgSq = new LinkedHashMap<>();
  private long steps;

  public AdamW(AdamWSettings settings) {
    this.settings = settings;
  }

  /**
   * An optimizer that continues from saved state: {@code steps} taken, and the first and second
   * moments of every parameter (copied).
   */
  public static AdamW restore(AdamWSettings settings, long steps, Map<String, Tensor> expAvg,
      Map<String, Tensor> expAvgSq) {
    if (steps < 0) {
      throw new IllegalArgumentException("steps must be >= 0, got " + steps);
    }
    if (!expAvg.keySet().equals(expAvgSq.keySet())) {
      throw new IllegalArgumentException("exp_avg and exp_avg_sq must name the same parameters,"
          + " got " + expAvg.keySet() + " and " + expAvgSq.keySet());
    }
    AdamW opt = new AdamW(settings);
    opt.steps = steps;
    for (Map.Entry<String, Tensor> e : expAvg.entrySet()) {
      Tensor sq = expAvgSq.get(e.getKey());
      if (sq.size() != e.getValue().size()) {
        throw new IllegalArgumentException("parameter '" + e.getKey() + "': exp_avg has "
            + e.getValue().size() + " values, exp_avg_sq " + sq.size());
      }
      opt.expAvg.put(e.getKey(), e.getValue().copy());
      opt.expAvgSq.put(e.getKey(), sq.copy());
    }
    return opt;
  }

  public AdamWSettings settings() {
    return settings;
  }

  /** The steps taken so far (PyTorch's {@code state['step']}). */
  public long steps() {
    return steps;
  }

  /**
   * One step: updates every tensor of {@code params} in place from the gradient of the same name.
   *
   * @param grads one gradient per parameter, of the same size (not modified)
   * @param lr this step's learning rate (from a {@link LearningRateSchedule})
   */
  public void step(Map<String, Tensor> params, Map<String, Tensor> grads, double lr) {
    if (!(lr >= 0) || Double.isInfinite(lr)) {
      throw new IllegalArgumentException("lr must be finite and >= 0, got " + lr);
    }
    for (Map.Entry<String, Tensor> e : params.entrySet()) {
      Tensor g = grads.get(e.getKey());
      if (g == null) {
        throw new IllegalArgumentException("no gradient for parameter '" + e.getKey()
            + "': expected one of shape " + Arrays.toString(e.getValue().shape()));
      }
      if (g.size() != e.getValue().size()) {
        throw new IllegalArgumentException("gradient of '" + e.getKey() + "' has shape "
            + Arrays.toString(g.shape()) + ", expected " + Arrays.toString(e.getValue().shape()));
      }
    }
    steps++;
    // PyTorch computes these scalars in double and applies them to fp32 tensors.
    double bias1 = 1 - Math.pow(settings.beta1(), steps);
    double bias2Sqrt = Math.sqrt(1 - Math.pow(settings.beta2(), steps));
    float decay = (float) (1 - lr * settings.weightDecay());
    float beta1 = (float) settings.beta1();
    float beta2 = (float) settings.beta2();
    float oneMinusBeta1 = (float) (1 - settings.beta1());
    float oneMinusBeta2 = (float) (1 - settings.beta2());
    float stepSize = (float) (lr / bias1);
    float bias2SqrtF = (float) bias2Sqrt;
    float eps = (float) settings.eps();
    for (Map.Entry<String, Tensor> e : params.entrySet()) {
      Tensor param = e.getValue();
      float[] p = param.data();
      float[] g = grads.get(e.getKey()).data();
      float[] m = expAvg.computeIfAbsent(e.getKey(), k -> Tensor.zeros(param.shape())).data();
      float[] v = expAvgSq.computeIfAbsent(e.getKey(), k -> Tensor.zeros(param.shape())).data();
      if (m.length != p.length) {
        throw new IllegalArgumentException("parameter '" + e.getKey() + "' has " + p.length
            + " values, but its optimizer state has " + m.length);
      }
      for (int i = 0; i < p.length; i++) {
        float pi = p[i] * decay;
        float mi = m[i] * beta1 + oneMinusBeta1 * g[i];
        float vi = v[i] * beta2 + oneMinusBeta2 * g[i] * g[i];
        float denom = (float) Math.sqrt(vi) / bias2SqrtF + eps;
        p[i] = pi - stepSize * (mi / denom);
        m[i] = mi;
        v[i] = vi;
      }
    }
  }

  /** The first moments by parameter name (copies). */
  public Map<String, Tensor> expAvg() {
    return copies(expAvg);
  }

  /** The second moments by parameter name (copies). */
  public Map<String, Tensor> expAvgSq() {
    return copies(expAvgSq);
  }

  private static Map<String, Tensor> copies(Map<String, Tensor> state) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    state.forEach((k, v) -> out.put(k, v.copy()));
    return Collections.unmodifiableMap(out);
  }
}
