package dev.mosaic.kernels.grad;

/**
 * {@code torch.nn.functional.cross_entropy(logits, target)} with its default mean over rows:
 * {@code loss = mean_r(lse(logits_r) − logits_r[target_r])}, and its gradient
 * {@code dlogits = (softmax(logits) − onehot(target)) / rows}. The log-sum-exp subtracts the row
 * maximum, so logits in the thousands neither overflow nor lose the small probabilities.
 */
public final class SoftmaxCrossEntropy {
  private SoftmaxCrossEntropy() {}

  /** The mean loss and the gradient of that mean with respect to every logit. */
  public record Result(double loss, float[] dlogits) {}

  /**
   * @param logits {@code rows × classes}, row-major
   * @param target each row's class, in {@code [0, classes)}
   */
  public static Result apply(float[] logits, int classes, int[] target) {
    int rows = target.length;
    if (classes < 1 || (long) rows * classes != logits.length) {
      throw new IllegalArgumentException("logits must hold rows*classes = " + rows + "*" + classes
          + " values, got " + logits.length);
    }
    float[] grad = new float[logits.length];
    double total = 0;
    for (int r = 0; r < rows; r++) {
      int t = target[r];
      if (t < 0 || t >= classes) {
        throw new IllegalArgumentException("target[" + r + "] must be in [0, " + classes
            + "), got " + t);
      }
      int off = r * classes;
      double max = Double.NEGATIVE_INFINITY;
      for (int c = 0; c < classes; c++) {
        max = Math.max(max, logits[off + c]);
      }
      double sum = 0;
      for (int c = 0; c < classes; c++) {
        sum += Math.exp(logits[off + c] - max);
      }
      double lse = max + Math.log(sum);
      total += lse - logits[off + t];
      for (int c = 0; c < classes; c++) {
        double p = Math.exp(logits[off + c] - lse);
        grad[off + c] = (float) ((p - (c == t ? 1 : 0)) / rows);
      }
    }
    return new Result(total / rows, grad);
  }
}
