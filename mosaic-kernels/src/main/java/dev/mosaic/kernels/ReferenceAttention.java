package dev.mosaic.kernels;

/**
 * The textbook definition in double precision: full score row, max, exp, normalise. O(seqK) memory
 * per query, no tiling, no tricks. It exists to check the fast kernels (tests and
 * {@code mosaic selftest}); never use it for real work. Grouped-query attention reads K/V head
 * {@link AttentionKernel#kvHead} for each query head.
 */
public final class ReferenceAttention implements AttentionKernel {

  @Override
  public String name() {
    return "reference(double)";
  }

  @Override
  public void forward(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    AttentionKernel.checkShapes(q, k, v, out, lse);
    int d = q.headDim();
    double[] scores = new double[k.seq()];
    double[] acc = new double[d];
    for (int b = 0; b < q.batch(); b++) {
      for (int h = 0; h < q.heads(); h++) {
        int kh = AttentionKernel.kvHead(h, q.heads(), k.heads());
        for (int i = 0; i < q.seq(); i++) {
          int qi = q.index(b, i, h);
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < k.seq(); j++) {
            if (mask.masks(i, j)) {
              scores[j] = Double.NEGATIVE_INFINITY;
              continue;
            }
            int kj = k.index(b, j, kh);
            double dot = 0;
            for (int c = 0; c < d; c++) {
              dot += (double) q.data()[qi + c] * k.data()[kj + c];
            }
            scores[j] = dot * scale;
            max = Math.max(max, scores[j]);
          }
          int oi = out.index(b, i, h);
          int li = (b * q.seq() + i) * q.heads() + h;
          if (max == Double.NEGATIVE_INFINITY) {
            for (int c = 0; c < d; c++) {
              out.data()[oi + c] = 0f;
            }
            lse[li] = Float.NEGATIVE_INFINITY;
            continue;
          }
          java.util.Arrays.fill(acc, 0);
          double sum = 0;
          for (int j = 0; j < k.seq(); j++) {
            if (scores[j] == Double.NEGATIVE_INFINITY) {
              continue;
            }
            double p = Math.exp(scores[j] - max);
            sum += p;
            int vj = v.index(b, j, kh);
            for (int c = 0; c < d; c++) {
              acc[c] += p * v.data()[vj + c];
            }
          }
          for (int c = 0; c < d; c++) {
            out.data()[oi + c] = (float) (acc[c] / sum);
          }
          lse[li] = (float) (max + Math.log(sum));
        }
      }
    }
  }
}
