package dev.mosaic.kernels.grad;

import dev.mosaic.kernels.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * PyTorch's {@code nn.LayerNorm(dim)} (eps 1e-5) over the last axis, forward and backward. The
 * forward keeps what the backward needs per row, the mean and {@code rstd = 1/√(var + eps)}
 * (population variance); the backward is
 * <pre>
 *   x̂ = (x − mean)·rstd        dγ = Σ_rows dy∘x̂        dβ = Σ_rows dy
 *   dx = rstd·(g − mean(g) − x̂·mean(g∘x̂)),  g = dy∘γ
 * </pre>
 * with row sums and the parameter sums in double.
 */
public final class LayerNormBackward {
  /** PyTorch's default, and nanoTabPFN's. */
  public static final double EPS = 1e-5;

  private LayerNormBackward() {}

  /**
   * The forward's output and the per-row statistics its backward needs, kept in double: for a
   * nearly constant row, x − mean cancels, and a mean rounded to fp32 would be most of the rest.
   */
  public record Forward(float[] y, double[] mean, double[] rstd) {}

  /** Normalises each row of {@code dim = weight.length} values of {@code x}. */
  public static Forward forward(float[] x, float[] weight, float[] bias) {
    int e = checkRows(x, weight, bias);
    int rows = x.length / e;
    float[] y = new float[x.length];
    double[] mean = new double[rows];
    double[] rstd = new double[rows];
    for (int r = 0, off = 0; r < rows; r++, off += e) {
      double m = 0;
      for (int i = 0; i < e; i++) {
        m += x[off + i];
      }
      m /= e;
      double var = 0;
      for (int i = 0; i < e; i++) {
        double d = x[off + i] - m;
        var += d * d;
      }
      double rs = 1 / Math.sqrt(var / e + EPS);
      float inv = (float) rs; // the output in PyTorch's fp32 order, as the model's LayerNorm
      mean[r] = m;
      rstd[r] = rs;
      for (int i = 0; i < e; i++) {
        y[off + i] = (float) (x[off + i] - m) * inv * weight[i] + bias[i];
      }
    }
    return new Forward(y, mean, rstd);
  }

  /** dx and the {@code weight}, {@code bias} gradients, from the forward's saved statistics. */
  public static Gradients backward(float[] x, float[] weight, Forward saved, float[] dy) {
    int e = weight.length;
    if (dy.length != x.length || x.length % e != 0) {
      throw new IllegalArgumentException("dy must hold " + x.length + " values like x, got "
          + dy.length);
    }
    int rows = x.length / e;
    float[] dx = new float[x.length];
    double[] dw = new double[e];
    double[] db = new double[e];
    double[] xhat = new double[e];
    for (int r = 0, off = 0; r < rows; r++, off += e) {
      double mean = saved.mean()[r];
      double rstd = saved.rstd()[r];
      double sumG = 0;
      double sumGx = 0;
      for (int i = 0; i < e; i++) {
        xhat[i] = (x[off + i] - mean) * rstd;
        double g = (double) dy[off + i] * weight[i];
        sumG += g;
        sumGx += g * xhat[i];
        dw[i] += dy[off + i] * xhat[i];
        db[i] += dy[off + i];
      }
      double meanG = sumG / e;
      double meanGx = sumGx / e;
      for (int i = 0; i < e; i++) {
        double g = (double) dy[off + i] * weight[i];
        dx[off + i] = (float) (rstd * (g - meanG - xhat[i] * meanGx));
      }
    }
    Map<String, Tensor> params = new LinkedHashMap<>();
    params.put("weight", Tensor.of(LinearBackward.toFloat(dw), e));
    params.put("bias", Tensor.of(LinearBackward.toFloat(db), e));
    return new Gradients(dx, params);
  }

  private static int checkRows(float[] x, float[] weight, float[] bias) {
    int e = weight.length;
    if (bias.length != e) {
      throw new IllegalArgumentException("LayerNorm bias must have " + e + " values like the"
          + " weight, got " + bias.length);
    }
    if (e == 0 || x.length % e != 0) {
      throw new IllegalArgumentException("x must hold whole rows of " + e + " values, got "
          + x.length);
    }
    return e;
  }
}
