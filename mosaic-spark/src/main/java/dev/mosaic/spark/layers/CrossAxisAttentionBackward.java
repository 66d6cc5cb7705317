package dev.mosaic.spark.layers;

import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.grad.LinearBackward;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The backward of {@link CrossAxisAttention}, in the forward's order reversed:
 * <pre>
 *   y = attn·W_outᵀ + b_out          → d attn, d out_proj.weight, d out_proj.bias
 *   attn = attention(q, k, v)        → dq, dk, dv (the strategy's backward; a ring sends each
 *                                      dK/dV accumulator home with its block)
 *   q = x·W_qᵀ + b_q                 → dx, rows [0, E) of d in_proj_weight / d in_proj_bias
 *   [k|v] = kv·W_kvᵀ + b_kv          → dkv, rows [E, 3E)
 * </pre>
 */
final class CrossAxisAttentionBackward {
  private CrossAxisAttentionBackward() {}

  static CrossAxisAttention.Gradients backward(CrossAxisAttention layer,
      CrossAxisAttention.Activations saved, Tensor dy) {
    if (!saved.saved()) {
      throw new IllegalArgumentException("saved activations are missing: run forwardForBackward,"
          + " not forward, before backward");
    }
    Tensor y = saved.output();
    if (!Arrays.equals(dy.shape(), y.shape())) {
      throw new IllegalArgumentException("dy must have y's shape " + Arrays.toString(y.shape())
          + ", got " + Arrays.toString(dy.shape()));
    }
    MultiAxisAttention inner = layer.attention();
    int e = inner.embedDim();
    Tensor xs = saved.movedQuery();
    Tensor ks = saved.movedKv();
    int seqPos = xs.rank() - 2;
    int ax = saved.axis();
    int batch = AttentionAxis.batchOf(xs);
    int nq = xs.dim(seqPos);
    int nk = ks.dim(seqPos);
    AttentionWeights w = inner.weights();

    float[] dys = (ax == seqPos ? dy : dy.moveAxis(ax, seqPos)).data();
    Gradients out = LinearBackward.backward(saved.attention().data(), batch * nq,
        w.outProjWeight(), true, dys, inner.parallel());

    // Every rank runs the strategy's backward, even with no rows of its own: its peers wait
    // for its share of the ring.
    float[] dq = new float[batch * nq * e];
    float[] dkv = new float[batch * nk * 2 * e];
    BlockView[] fwd = layer.views(saved.q(), saved.kvProj(), batch, nq, nk);
    BlockView[] grads = layer.views(dq, dkv, batch, nq, nk);
    Tensor dAttn = Tensor.of(out.input(), saved.attention().shape());
    inner.strategy().attendBackward(fwd[0], fwd[1], fwd[2], BlockView.of(saved.attention()),
        saved.lse(), BlockView.of(dAttn), inner.scale(), saved.mask(), grads[0], grads[1],
        grads[2]);
    Gradients inQ = LinearBackward.backward(xs.data(), batch * nq, layer.queryWeight(), true, dq,
        inner.parallel());
    Gradients inKv = LinearBackward.backward(ks.data(), batch * nk, layer.keyValueWeight(), true,
        dkv, inner.parallel());

    Map<String, Tensor> params = new LinkedHashMap<>();
    params.put(AttentionWeights.IN_PROJ_WEIGHT, Tensor.of(concat(
        inQ.parameters().get("weight"), inKv.parameters().get("weight")), 3 * e, e));
    params.put(AttentionWeights.IN_PROJ_BIAS, Tensor.of(concat(
        inQ.parameters().get("bias"), inKv.parameters().get("bias")), 3 * e));
    params.put(AttentionWeights.OUT_PROJ_WEIGHT, out.parameters().get("weight"));
    params.put(AttentionWeights.OUT_PROJ_BIAS, out.parameters().get("bias"));
    return new CrossAxisAttention.Gradients(back(inQ.input(), xs, ax), back(inKv.input(), ks, ax),
        params);
  }

  /** A gradient laid out like the moved input {@code moved}, in the input's own layout. */
  private static Tensor back(float[] grad, Tensor moved, int ax) {
    Tensor g = Tensor.of(grad, moved.shape());
    int seqPos = moved.rank() - 2;
    return ax == seqPos ? g : g.moveAxis(seqPos, ax);
  }

  private static float[] concat(Tensor a, Tensor b) {
    float[] out = Arrays.copyOf(a.data(), a.size() + b.size());
    System.arraycopy(b.data(), 0, out, a.size(), b.size());
    return out;
  }
}
