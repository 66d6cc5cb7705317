package dev.mosaic.kernels.grad;

import dev.mosaic.kernels.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The backward of {@code y = x·Wᵀ + b} ({@link dev.mosaic.kernels.Linear}, PyTorch's
 * {@code nn.Linear} layout: weight {@code [out, in]}, bias {@code [out]}):
 * {@code dx = dy·W}, {@code dW = dyᵀ·x}, {@code db = Σ_rows dy}. Sums run in double: a weight's
 * gradient adds one term per row, and there can be many rows.
 */
public final class LinearBackward {
  private LinearBackward() {}

  /**
   * @param x the forward's input, {@code rows × in}, row-major
   * @param weight {@code [out, in]}
   * @param hasBias whether the layer has a bias (a {@code bias} gradient is returned then)
   * @param dy the gradient of the loss with respect to y, {@code rows × out}
   */
  public static Gradients backward(float[] x, int rows, Tensor weight, boolean hasBias,
      float[] dy) {
    if (weight.rank() != 2) {
      throw new IllegalArgumentException("linear weight must be [out, in], got " + weight);
    }
    int out = weight.dim(0);
    int in = weight.dim(1);
    if ((long) rows * in != x.length) {
      throw new IllegalArgumentException("x must hold rows*in = " + rows + "*" + in + " values, got "
          + x.length);
    }
    if ((long) rows * out != dy.length) {
      throw new IllegalArgumentException("dy must hold rows*out = " + rows + "*" + out
          + " values, got " + dy.length);
    }
    float[] w = weight.data();
    float[] dx = new float[rows * in];
    double[] row = new double[in];
    for (int r = 0; r < rows; r++) {
      java.util.Arrays.fill(row, 0);
      for (int o = 0; o < out; o++) {
        double g = dy[r * out + o];
        for (int i = 0; i < in; i++) {
          row[i] += g * w[o * in + i];
        }
      }
      for (int i = 0; i < in; i++) {
        dx[r * in + i] = (float) row[i];
      }
    }
    double[] dw = new double[out * in];
    double[] db = new double[out];
    for (int r = 0; r < rows; r++) {
      for (int o = 0; o < out; o++) {
        double g = dy[r * out + o];
        db[o] += g;
        for (int i = 0; i < in; i++) {
          dw[o * in + i] += g * x[r * in + i];
        }
      }
    }
    Map<String, Tensor> params = new LinkedHashMap<>();
    params.put("weight", Tensor.of(toFloat(dw), out, in));
    if (hasBias) {
      params.put("bias", Tensor.of(toFloat(db), out));
    }
    return new Gradients(dx, params);
  }

  static float[] toFloat(double[] a) {
    float[] f = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      f[i] = (float) a[i];
    }
    return f;
  }
}
