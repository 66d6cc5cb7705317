package dev.mosaic.kernels;

/**
 * Exact merge of attention partials computed over disjoint key sets. With {@code o} normalised and
 * {@code ℓ = log Σ exp(s)}: {@code ℓ' = ℓ − logσ(ℓ − ℓ_b)} and
 * {@code o' = o − σ(ℓ_b − ℓ)·(o − o_b)}. Stable for any number of merges, order independent up to
 * rounding, and {@code -inf} partials (queries that saw no key) leave the other side unchanged.
 */
public final class LseMerge {
  private LseMerge() {}

  /** σ(x) = 1 / (1 + e^{-x}), written to stay finite for large |x|. */
  static double sigmoid(double x) {
    if (x >= 0) {
      return 1.0 / (1.0 + Math.exp(-x));
    }
    double e = Math.exp(x);
    return e / (1.0 + e);
  }

  /** The merged log-sum-exp: log(e^a + e^b), exact for infinite arguments. */
  public static float mergedLse(float a, float b) {
    if (a == Float.NEGATIVE_INFINITY) {
      return b;
    }
    if (b == Float.NEGATIVE_INFINITY) {
      return a;
    }
    // ℓ − logσ(ℓ − ℓ_b) = max + log1p(e^{−|a−b|})
    double hi = Math.max(a, b);
    return (float) (hi + Math.log1p(Math.exp(-Math.abs((double) a - b))));
  }

  /** Weight of the incoming partial: σ(ℓ_b − ℓ), 0 when it saw nothing, 1 when we saw nothing. */
  public static float incomingWeight(float lse, float lseB) {
    if (lseB == Float.NEGATIVE_INFINITY) {
      return 0f;
    }
    if (lse == Float.NEGATIVE_INFINITY) {
      return 1f;
    }
    return (float) sigmoid((double) lseB - lse);
  }

  /**
   * Merges partial {@code (oB, lseB)} into {@code (o, lse)} in place for one row of {@code dim}
   * values.
   */
  public static void mergeRow(float[] o, int oOff, float[] lse, int lseIdx, float[] oB, int oBOff,
      float lseB, int dim) {
    float w = incomingWeight(lse[lseIdx], lseB);
    if (w != 0f) {
      for (int i = 0; i < dim; i++) {
        float a = o[oOff + i];
        o[oOff + i] = a - w * (a - oB[oBOff + i]);
      }
    }
    lse[lseIdx] = mergedLse(lse[lseIdx], lseB);
  }

  /**
   * Merges a whole block partial into an accumulator: both shaped {@code (batch, seq, heads,
   * headDim)} with LSE laid out {@code [batch][seq][heads]}.
   */
  public static void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {
    if (acc.batch() != part.batch() || acc.seq() != part.seq() || acc.heads() != part.heads()
        || acc.headDim() != part.headDim()) {
      throw new IllegalArgumentException("partials have different shapes");
    }
    int heads = acc.heads();
    for (int b = 0; b < acc.batch(); b++) {
      for (int s = 0; s < acc.seq(); s++) {
        for (int h = 0; h < heads; h++) {
          int li = (b * acc.seq() + s) * heads + h;
          mergeRow(acc.data(), acc.index(b, s, h), accLse, li, part.data(), part.index(b, s, h),
              partLse[li], acc.headDim());
        }
      }
    }
  }
}
