package dev.mosaic.spark.layers;

import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.grad.LinearBackward;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The backward of {@link MultiAxisAttention}, in the forward's order reversed:
 * <pre>
 *   y = attn·W_outᵀ + b_out        → d attn, d out_proj.weight, d out_proj.bias
 *   attn = attention(q, k, v)      → dq, dk, dv (the strategy's backward: P recomputed from LSE)
 *   [q|k|v] = x·W_inᵀ + b_in       → dx, d in_proj_weight, d in_proj_bias
 * </pre>
 * dq, dk and dv are written straight into one packed {@code [dq | dk | dv]} array, the gradient
 * of the packed projection, so the in-projection backward is one {@link LinearBackward} call.
 */
final class MultiAxisAttentionBackward {
  private MultiAxisAttentionBackward() {}

  static Gradients backward(MultiAxisAttention layer, AttentionActivations saved, Tensor dy) {
    if (!saved.saved()) {
      throw new IllegalArgumentException("saved activations are missing: run forwardForBackward,"
          + " not forward, before backward");
    }
    Tensor y = saved.output();
    if (!Arrays.equals(dy.shape(), y.shape())) {
      throw new IllegalArgumentException("dy must have y's shape " + Arrays.toString(y.shape())
          + ", got " + Arrays.toString(dy.shape()));
    }
    int e = layer.embedDim();
    Tensor xs = saved.movedInput();
    int rank = xs.rank();
    int seqPos = rank - 2;
    int ax = saved.axis();
    int seq = xs.dim(seqPos);
    int rows = xs.size() / e;
    int batch = seq == 0 ? 0 : rows / seq;
    AttentionWeights w = layer.weights();

    float[] dys = (ax == seqPos ? dy : dy.moveAxis(ax, seqPos)).data();
    Gradients out = LinearBackward.backward(saved.attention().data(), rows, w.outProjWeight(),
        true, dys, layer.parallel());

    float[] dqkv = new float[rows * layer.projectedWidth()];
    if (rows > 0) {
      BlockView[] qkv = layer.qkvViews(saved.qkv(), batch, seq);
      BlockView[] grads = layer.qkvViews(dqkv, batch, seq);
      Tensor dAttn = Tensor.of(out.input(), saved.attention().shape());
      layer.strategy().attendBackward(qkv[0], qkv[1], qkv[2], BlockView.of(saved.attention()),
          saved.lse(), BlockView.of(dAttn), layer.scale(), saved.mask(), grads[0], grads[1],
          grads[2]);
    }
    Gradients in = LinearBackward.backward(xs.data(), rows, w.inProjWeight(), true, dqkv,
        layer.parallel());

    Tensor dxs = Tensor.of(in.input(), xs.shape());
    Tensor dx = ax == seqPos ? dxs : dxs.moveAxis(seqPos, ax);
    Map<String, Tensor> params = new LinkedHashMap<>();
    params.put(AttentionWeights.IN_PROJ_WEIGHT, in.parameters().get("weight"));
    params.put(AttentionWeights.IN_PROJ_BIAS, in.parameters().get("bias"));
    params.put(AttentionWeights.OUT_PROJ_WEIGHT, out.parameters().get("weight"));
    params.put(AttentionWeights.OUT_PROJ_BIAS, out.parameters().get("bias"));
    return new Gradients(dx.data(), params);
  }
}
