package dev.mosaic.spark.layers;

import dev.mosaic.kernels.Tensor;

/**
 * Test oracle: PyTorch {@code nn.MultiheadAttention} semantics applied along one axis, in double
 * precision, by explicit index arithmetic (no permute, no kernel, no Linear) so it shares no code
 * with the layer it checks.
 */
public final class NaiveMultiAxisAttention {
  private NaiveMultiAxisAttention() {}

  public static Tensor forward(Tensor x, AttentionWeights w, int numHeads, int axis,
      boolean causal, long keyLimit) {
    double[] y = forwardDouble(x, w, numHeads, axis, causal, keyLimit);
    float[] out = new float[y.length];
    for (int i = 0; i < y.length; i++) {
      out[i] = (float) y[i];
    }
    return Tensor.of(out, x.shape());
  }

  /** The output in double, unrounded (finite differences of it need every digit). */
  public static double[] forwardDouble(Tensor x, AttentionWeights w, int numHeads, int axis,
      boolean causal, long keyLimit) {
    int[] shape = x.shape();
    int rank = shape.length;
    int ax = axis < 0 ? axis + rank : axis;
    int e = shape[rank - 1];
    int hd = e / numHeads;
    int seq = shape[ax];
    long[] strides = new long[rank];
    strides[rank - 1] = 1;
    for (int i = rank - 2; i >= 0; i--) {
      strides[i] = strides[i + 1] * shape[i + 1];
    }
    float[] xd = x.data();
    double[] out = new double[xd.length];
    float[] wi = w.inProjWeight().data();
    float[] bi = w.inProjBias().data();
    float[] wo = w.outProjWeight().data();
    float[] bo = w.outProjBias().data();
    // Walk every index with position 0 on the attention axis and the embed axis.
    int lines = xd.length / (seq * e);
    int[] idx = new int[rank];
    for (int line = 0; line < lines; line++) {
      long base = 0;
      for (int d = 0; d < rank; d++) {
        base += idx[d] * strides[d];
      }
      double[][] q = new double[seq][e];
      double[][] k = new double[seq][e];
      double[][] v = new double[seq][e];
      for (int s = 0; s < seq; s++) {
        long row = base + s * strides[ax];
        for (int o = 0; o < 3 * e; o++) {
          double acc = bi[o];
          for (int c = 0; c < e; c++) {
            acc += (double) wi[o * e + c] * xd[(int) (row + c)];
          }
          if (o < e) {
            q[s][o] = acc;
          } else if (o < 2 * e) {
            k[s][o - e] = acc;
          } else {
            v[s][o - 2 * e] = acc;
          }
        }
      }
      double[][] attn = new double[seq][e];
      double scale = 1 / Math.sqrt(hd);
      for (int h = 0; h < numHeads; h++) {
        for (int i = 0; i < seq; i++) {
          double[] sc = new double[seq];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < seq; j++) {
            if (j >= keyLimit || (causal && j > i)) {
              sc[j] = Double.NEGATIVE_INFINITY;
              continue;
            }
            double dot = 0;
            for (int c = 0; c < hd; c++) {
              dot += q[i][h * hd + c] * k[j][h * hd + c];
            }
            sc[j] = dot * scale;
            max = Math.max(max, sc[j]);
          }
          if (max == Double.NEGATIVE_INFINITY) {
            continue; // no visible key: zero (PyTorch would give NaN; Mosaic defines 0)
          }
          double sum = 0;
          for (int j = 0; j < seq; j++) {
            sc[j] = Math.exp(sc[j] - max);
            sum += sc[j];
          }
          for (int j = 0; j < seq; j++) {
            for (int c = 0; c < hd; c++) {
              attn[i][h * hd + c] += sc[j] / sum * v[j][h * hd + c];
            }
          }
        }
      }
      for (int s = 0; s < seq; s++) {
        long row = base + s * strides[ax];
        for (int o = 0; o < e; o++) {
          double acc = bo[o];
          for (int c = 0; c < e; c++) {
            acc += (double) wo[o * e + c] * attn[s][c];
          }
          out[(int) (row + o)] = acc;
        }
      }
      // next line index: skip the attention axis and the embed axis
      for (int d = rank - 2; d >= 0; d--) {
        if (d == ax) {
          continue;
        }
        if (++idx[d] < shape[d]) {
          break;
        }
        idx[d] = 0;
      }
    }
    return out;
  }
}
