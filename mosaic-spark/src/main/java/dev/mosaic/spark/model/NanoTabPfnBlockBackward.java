package dev.mosaic.spark.model;

import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.GeluBackward;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.grad.LayerNormBackward;
import dev.mosaic.kernels.grad.LinearBackward;
import dev.mosaic.spark.layers.AttentionActivations;
import java.util.Map;

/**
 * One {@link NanoTabPfnBlock} forward that keeps its activations, and its backward. The forward
 * computes what {@link NanoTabPfnBlock#forward} does (same fp32 operations in the same order):
 * <pre>
 *   r1 = t0 + cells(t0)          t1 = norm1(r1)
 *   r2 = t1 + rows(t1, nTrain)   t2 = norm2(r2)
 *   h = linear1(t2)   m = linear2(GELU(h))   r3 = t2 + m   t3 = norm3(r3)
 * </pre>
 * and the backward walks it in reverse, residuals adding their branch's input gradient.
 */
final class NanoTabPfnBlockBackward {
  private final NanoTabPfnBlock block;
  private final String prefix;
  private final Map<String, Tensor> weights;
  private final Linear linear1;
  private final Linear linear2;

  /** @param prefix the block's name prefix, {@code transformer_blocks.i.} */
  NanoTabPfnBlockBackward(NanoTabPfnBlock block, String prefix, Map<String, Tensor> weights) {
    this.block = block;
    this.prefix = prefix;
    this.weights = weights;
    linear1 = new Linear(w("linear1.weight"), w("linear1.bias"));
    linear2 = new Linear(w("linear2.weight"), w("linear2.bias"));
  }

  /** What the backward needs of one block's forward. */
  record Saved(AttentionActivations cells, float[] r1, LayerNormBackward.Forward norm1,
      AttentionActivations rows, float[] r2, LayerNormBackward.Forward norm2, float[] hidden,
      float[] gelu, float[] r3, LayerNormBackward.Forward norm3, Tensor output) {}

  Saved forward(Tensor t0, long nTrain, Parallel parallel) {
    int[] shape = t0.shape();
    int n = t0.size() / t0.dim(-1);
    AttentionActivations cells = block.cellAttention().forwardForBackward(t0, Long.MAX_VALUE);
    float[] r1 = add(t0.data(), cells.output().data());
    LayerNormBackward.Forward norm1 = norm(r1, "norm1.");
    Tensor t1 = Tensor.of(norm1.y(), shape);
    AttentionActivations rows = block.rowAttention().forwardForBackward(t1, nTrain);
    float[] r2 = add(norm1.y(), rows.output().data());
    LayerNormBackward.Forward norm2 = norm(r2, "norm2.");
    float[] hidden = linear1.forward(norm2.y(), n, parallel);
    float[] gelu = hidden.clone();
    ExactGelu.applyInPlace(gelu);
    float[] r3 = add(norm2.y(), linear2.forward(gelu, n, parallel));
    LayerNormBackward.Forward norm3 = norm(r3, "norm3.");
    return new Saved(cells, r1, norm1, rows, r2, norm2, hidden, gelu, r3, norm3,
        Tensor.of(norm3.y(), shape));
  }

  /**
   * The gradient with respect to the block's input {@code t0}, given {@code dt3}; every parameter
   * gradient goes into {@code grads} under its full name.
   */
  float[] backward(Saved s, float[] dt3, Map<String, Tensor> grads, Parallel parallel) {
    int[] shape = s.output().shape();
    int n = dt3.length / shape[shape.length - 1];
    Gradients n3 = LayerNormBackward.backward(s.r3(), w("norm3.weight").data(), s.norm3(), dt3);
    float[] dr3 = n3.input();
    Gradients l2 = LinearBackward.backward(s.gelu(), n, w("linear2.weight"), true, dr3,
        parallel);
    float[] dh = GeluBackward.backward(s.hidden(), l2.input());
    Gradients l1 = LinearBackward.backward(s.norm2().y(), n, w("linear1.weight"), true, dh,
        parallel);
    float[] dt2 = add(dr3, l1.input());

    Gradients n2 = LayerNormBackward.backward(s.r2(), w("norm2.weight").data(), s.norm2(), dt2);
    Gradients rows = block.rowAttention().backward(s.rows(), Tensor.of(n2.input(), shape));
    float[] dt1 = add(n2.input(), rows.input());

    Gradients n1 = LayerNormBackward.backward(s.r1(), w("norm1.weight").data(), s.norm1(), dt1);
    Gradients cells = block.cellAttention().backward(s.cells(), Tensor.of(n1.input(), shape));
    float[] dt0 = add(n1.input(), cells.input());

    put(grads, rows, NanoTabPfnShape.ROW_ATTENTION);
    put(grads, cells, NanoTabPfnShape.CELL_ATTENTION);
    put(grads, l1, "linear1.");
    put(grads, l2, "linear2.");
    put(grads, n1, "norm1.");
    put(grads, n2, "norm2.");
    put(grads, n3, "norm3.");
    return dt0;
  }

  private void put(Map<String, Tensor> grads, Gradients g, String layer) {
    g.parameters().forEach((name, t) -> grads.put(prefix + layer + name, t));
  }

  private LayerNormBackward.Forward norm(float[] x, String layer) {
    return LayerNormBackward.forward(x, w(layer + "weight").data(), w(layer + "bias").data());
  }

  private Tensor w(String name) {
    return weights.get(prefix + name);
  }

  /** {@code a + b} in fp32, a new array (the forward's residual additions). */
  static float[] add(float[] a, float[] b) {
    float[] c = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      c[i] = a[i] + b[i];
    }
    return c;
  }
}
