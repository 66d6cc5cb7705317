package dev.mosaic.spark.layers;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.GpuDtype;
import java.util.Arrays;

/**
 * A {@link MultiAxisAttention}'s queries attending to keys and values computed earlier
 * ({@link KeyValues}), possibly in parts merged exactly ({@link AttentionPartial#merge}): the
 * query rows and the key/value rows of the packed {@code [q | k | v]} projection as layers of
 * their own, and the attention kernel a local strategy would use, made on first use.
 */
final class CachedKeyAttention implements AutoCloseable {
  private final MultiAxisAttention layer;
  private final Linear queryProj;
  private final Linear keyValueProj;
  private final String device;
  private final int threads;
  private final GpuDtype gpuDtype;
  private AttentionKernel kernel;

  CachedKeyAttention(MultiAxisAttention layer, AttentionWeights weights, String device,
      int threads, GpuDtype gpuDtype) {
    this.layer = layer;
    int e = layer.embedDim();
    this.queryProj = projectionRows(weights, e, 0, e);
    this.keyValueProj = projectionRows(weights, e, e, e + 2 * layer.numKvHeads() * layer.headDim());
    this.device = device;
    this.threads = threads;
    this.gpuDtype = gpuDtype;
  }

  /** See {@link MultiAxisAttention#keyValues}. */
  KeyValues keyValues(Tensor x) {
    requireMultiHead("keyValues");
    Tensor xs = layer.toSequenceAxis(x);
    int seq = xs.dim(-2);
    int rows = xs.size() / layer.embedDim();
    float[] kv = keyValueProj.forward(xs.data(), rows, layer.parallel());
    return new KeyValues(kv, AttentionAxis.batchOf(xs), seq, layer.embedDim());
  }

  /** See {@link MultiAxisAttention#attend}. */
  Tensor attend(Tensor x, KeyValues... parts) {
    if (parts.length == 0) {
      throw new IllegalArgumentException("parts is empty: expected at least one key/value part");
    }
    AttentionPartial acc = partial(x, parts[0]);
    for (int i = 1; i < parts.length; i++) {
      acc.merge(partial(x, parts[i]));
    }
    return finish(acc);
  }

  /** See {@link MultiAxisAttention#partial}. */
  AttentionPartial partial(Tensor x, KeyValues keys) {
    requireMultiHead("partial");
    if (layer.causal()) {
      throw new IllegalStateException("attending to cached keys needs a non-causal layer; this"
          + " one is causal");
    }
    int embedDim = layer.embedDim();
    if (keys.embedDim() != embedDim) {
      throw new IllegalArgumentException("keys have embedDim " + keys.embedDim()
          + ", expected the layer's " + embedDim);
    }
    Tensor xs = layer.toSequenceAxis(x);
    int seq = xs.dim(-2);
    int rows = xs.size() / embedDim;
    int batch = AttentionAxis.batchOf(xs);
    if (batch != keys.batch()) {
      throw new IllegalArgumentException("queries have batch " + batch + " (the input's other"
          + " axes), keys have " + keys.batch() + ": expected the same");
    }
    int heads = layer.numHeads();
    int headDim = layer.headDim();
    Tensor out = Tensor.zeros(batch, seq, heads, headDim);
    float[] lse = new float[batch * seq * heads];
    if (keys.seq() == 0 || lse.length == 0) {
      // no keys: output 0 with lse -inf, which a merge leaves out (as the kernel would)
      Arrays.fill(lse, Float.NEGATIVE_INFINITY);
      return new AttentionPartial(out, lse, x.shape());
    }
    float[] q = queryProj.forward(xs.data(), rows, layer.parallel());
    int e2 = 2 * embedDim;
    BlockView qv = new BlockView(q, 0, batch, seq, heads, headDim, embedDim,
        (long) seq * embedDim);
    long kvStride = (long) keys.seq() * e2;
    BlockView k = new BlockView(keys.data(), 0, batch, keys.seq(), heads, headDim, e2, kvStride);
    BlockView v = new BlockView(keys.data(), embedDim, batch, keys.seq(), heads, headDim, e2,
        kvStride);
    kernel().forward(qv, k, v, (float) (1 / Math.sqrt(headDim)), AttentionMask.NONE,
        BlockView.of(out), lse);
    return new AttentionPartial(out, lse, x.shape());
  }

  /** See {@link MultiAxisAttention#finish}. */
  Tensor finish(AttentionPartial merged) {
    int[] shape = merged.shape();
    int ax = AttentionAxis.resolve(layer.attentionAxis(), shape.length, "attentionAxis");
    int[] moved = AttentionAxis.sequenceShape(shape, ax);
    int rows = merged.output().size() / layer.embedDim();
    Tensor ys = Tensor.of(layer.outProj().forward(merged.output().data(), rows,
        layer.parallel()), moved);
    return AttentionAxis.fromSequence(ys, ax);
  }

  /** Cached keys ({@link KeyValues}) are laid out for multi-head attention only, so far. */
  private void requireMultiHead(String method) {
    if (layer.numKvHeads() != layer.numHeads()) {
      throw new IllegalStateException(method + " (attending to cached keys) needs numKvHeads ="
          + " numHeads; this layer has " + layer.numKvHeads() + " K/V heads for "
          + layer.numHeads() + " heads");
    }
  }

  /** Rows {@code [from, to)} of the packed {@code [q | k | v]} projection as their own layer. */
  private static Linear projectionRows(AttentionWeights weights, int embedDim, int from, int to) {
    float[] w = weights.inProjWeight().data();
    float[] bias = weights.inProjBias().data();
    return new Linear(
        Tensor.of(Arrays.copyOfRange(w, from * embedDim, to * embedDim), to - from, embedDim),
        Tensor.of(Arrays.copyOfRange(bias, from, to), to - from));
  }

  /** The kernel for attending to cached keys (the one a local strategy would use), made once. */
  private synchronized AttentionKernel kernel() {
    if (kernel == null) {
      kernel = dev.mosaic.spark.gpu.Devices.kernel(device, threads, gpuDtype);
    }
    return kernel;
  }

  @Override
  public synchronized void close() {
    if (kernel != null) {
      kernel.close();
      kernel = null;
    }
  }
}
