package dev.mosaic.kernels;

/**
 * The attention backward by its textbook definition, in double precision, from Q, K, V and dO
 * alone (it recomputes its own softmax and output): a full score row per query, no tiling. It
 * exists to check {@link CpuFlashAttentionBackward} and the distributed backwards; never use it
 * for real work (O(seqK) memory per query, O(seqQ·seqK·headDim) time on one thread).
 */
public final class ReferenceAttentionBackward {
  private ReferenceAttentionBackward() {}

  /** Writes dq, dk and dv: the gradients of {@code sum(O·dO)}, O = attention(q, k, v). */
  public static void backward(BlockView q, BlockView k, BlockView v, BlockView dOut, float scale,
      AttentionMask mask, BlockView dq, BlockView dk, BlockView dv) {
    int d = q.headDim();
    int nk = k.seq();
    double[] p = new double[nk];
    double[] dp = new double[nk];
    double[] o = new double[d];
    double[][] dkAcc = new double[nk][d];
    double[][] dvAcc = new double[nk][d];
    for (int b = 0; b < q.batch(); b++) {
      int group = q.heads() / k.heads(); // grouped-query attention: query heads per K/V head
      for (int kh = 0; kh < k.heads(); kh++) {
        for (double[] row : dkAcc) {
          java.util.Arrays.fill(row, 0);
        }
        for (double[] row : dvAcc) {
          java.util.Arrays.fill(row, 0);
        }
        // dK/dV of a K/V head sum over every query head that reads it.
        for (int h = kh * group; h < (kh + 1) * group; h++) {
          for (int i = 0; i < q.seq(); i++) {
            int qi = q.index(b, i, h);
            int gi = dOut.index(b, i, h);
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < nk; j++) {
              p[j] = mask.masks(i, j) ? Double.NEGATIVE_INFINITY
                  : scale * dot(q.data(), qi, k.data(), k.index(b, j, kh), d);
              max = Math.max(max, p[j]);
            }
            double[] dqRow = new double[d];
            if (max != Double.NEGATIVE_INFINITY) {
              double sum = 0;
              for (int j = 0; j < nk; j++) {
                p[j] = p[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(p[j] - max);
                sum += p[j];
              }
              java.util.Arrays.fill(o, 0);
              for (int j = 0; j < nk; j++) {
                p[j] /= sum;
                int vj = v.index(b, j, kh);
                for (int c = 0; c < d; c++) {
                  o[c] += p[j] * v.data()[vj + c];
                }
              }
              double rowDot = 0; // D = dO·O
              for (int c = 0; c < d; c++) {
                rowDot += dOut.data()[gi + c] * o[c];
              }
              for (int j = 0; j < nk; j++) {
                if (p[j] == 0) {
                  continue;
                }
                dp[j] = dot(dOut.data(), gi, v.data(), v.index(b, j, kh), d);
                double ds = p[j] * (dp[j] - rowDot) * scale;
                int kj = k.index(b, j, kh);
                for (int c = 0; c < d; c++) {
                  dvAcc[j][c] += p[j] * dOut.data()[gi + c];
                  dkAcc[j][c] += ds * q.data()[qi + c];
                  dqRow[c] += ds * k.data()[kj + c];
                }
              }
            }
            int dqi = dq.index(b, i, h);
            for (int c = 0; c < d; c++) {
              dq.data()[dqi + c] = (float) dqRow[c];
            }
          }
        }
        for (int j = 0; j < nk; j++) {
          int ki = dk.index(b, j, kh);
          int vi = dv.index(b, j, kh);
          for (int c = 0; c < d; c++) {
            dk.data()[ki + c] = (float) dkAcc[j][c];
            dv.data()[vi + c] = (float) dvAcc[j][c];
          }
        }
      }
    }
  }

  private static double dot(float[] a, int ai, float[] b, int bi, int d) {
    double s = 0;
    for (int c = 0; c < d; c++) {
      s += (double) a[ai + c] * b[bi + c];
    }
    return s;
  }
}
