package dev.mosaic.spark.model;

import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import java.util.Random;

/** Linear → GELU → Linear, applied row by row. */
public final class Mlp {
  private final Linear up;
  private final Linear down;

  public Mlp(int in, int hidden, int out, Random rnd) {
    up = new Linear(uniform(rnd, hidden, in), Tensor.zeros(hidden));
    down = new Linear(uniform(rnd, out, hidden), Tensor.zeros(out));
  }

  /** PyTorch's default {@code nn.Linear} initialisation bound, ±1/√in. */
  static Tensor uniform(Random rnd, int out, int in) {
    float bound = (float) (1 / Math.sqrt(in));
    float[] w = new float[out * in];
    for (int i = 0; i < w.length; i++) {
      w[i] = (rnd.nextFloat() * 2 - 1) * bound;
    }
    return Tensor.of(w, out, in);
  }

  public float[] forward(float[] x, int rows, Parallel parallel) {
    float[] h = up.forward(x, rows, parallel);
    for (int i = 0; i < h.length; i++) {
      h[i] = gelu(h[i]);
    }
    return down.forward(h, rows, parallel);
  }

  /** The tanh approximation of GELU. */
  static float gelu(float x) {
    double c = Math.sqrt(2 / Math.PI);
    return (float) (0.5 * x * (1 + Math.tanh(c * (x + 0.044715 * x * x * x))));
  }
}
