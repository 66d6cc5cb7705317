package dev.mosaic.kernels;

/**
 * Attention for one (query block, key/value block) pair. Writes the <em>normalised</em> partial
 * output {@code softmax(scale·QKᵀ + mask)·V} and, per (batch, query, head), the log-sum-exp of the
 * scaled, masked scores, so that partials over different key blocks merge exactly with
 * {@link LseMerge}. A query that sees no key gets output 0 and {@code lse = -inf}, never NaN.
 */
public interface AttentionKernel extends AutoCloseable {

  /**
   * @param q queries {@code (batch, seqQ, heads, headDim)}
   * @param k keys {@code (batch, seqK, kvHeads, headDim)}; {@code kvHeads} divides {@code heads}
   *     (grouped-query attention, see {@link #kvHead}); MHA has {@code kvHeads = heads}
   * @param v values, shaped like {@code k}
   * @param scale multiplies the scores, usually {@code 1/sqrt(headDim)}
   * @param mask which keys each query sees (global offsets for sharded blocks)
   * @param out receives the output, shaped like {@code q}; may not alias the inputs
   * @param lse receives the log-sum-exp, laid out {@code [batch][seqQ][heads]} from index 0
   */
  void forward(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse);

  /**
   * Attention over many sequences packed into one buffer (cu_seqlens style): sequence {@code s}'s
   * queries see only its own keys, under {@code mask} in the sequence's own row numbers and its
   * key padding. {@code q}, {@code k}, {@code v} and {@code out} hold the sequences' rows along
   * seq, the same packing in every batch element (for example the features of a table's rows);
   * {@code lse} is laid out {@code [batch][query row][head]}. This default calls
   * {@link #forward} once per sequence; kernels with a packed path override it.
   */
  default void forwardVarlen(BlockView q, BlockView k, BlockView v, VarlenSequences seqs,
      float scale, AttentionMask mask, BlockView out, float[] lse) {
    checkShapes(q, k, v, out, lse);
    seqs.checkRows(q, k);
    int heads = q.heads();
    for (int b = 0; b < q.batch(); b++) {
      for (int s = 0; s < seqs.count(); s++) {
        int nq = seqs.queries(s);
        if (nq == 0) {
          continue;
        }
        int q0 = seqs.queryStart(s);
        float[] part = new float[nq * heads];
        BlockView ks = VarlenSequences.batchRows(k, b, seqs.keyStart(s), seqs.keys(s));
        BlockView vs = VarlenSequences.batchRows(v, b, seqs.keyStart(s), seqs.keys(s));
        forward(VarlenSequences.batchRows(q, b, q0, nq), ks, vs, scale, seqs.mask(s, mask),
            VarlenSequences.batchRows(out, b, q0, nq), part);
        System.arraycopy(part, 0, lse, (b * q.seq() + q0) * heads, part.length);
      }
    }
  }

  /**
   * Makes later {@link #forward} calls ask {@code cancellation} between tiles and throw
   * {@link CancelledException} when it says to stop. The default ignores it; the CPU and CUDA
   * kernels honour it.
   */
  default void cancelWith(Cancellation cancellation) {}

  /** A short name for logs and benchmarks. */
  String name();

  @Override
  default void close() {}

  /**
   * The K/V head that query head {@code h} reads under grouped-query attention:
   * {@code ⌊h·kvHeads/heads⌋}, so consecutive groups of {@code heads/kvHeads} query heads share one
   * K/V head (Hugging Face's {@code repeat_kv} order). With {@code kvHeads = heads} it is
   * {@code h}.
   */
  static int kvHead(int h, int heads, int kvHeads) {
    return h / (heads / kvHeads);
  }

  /** Shape checks every implementation shares. */
  static void checkShapes(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse) {
    if (k.batch() != q.batch() || v.batch() != q.batch() || out.batch() != q.batch()) {
      throw new IllegalArgumentException("batch sizes differ: q " + q.batch() + ", k " + k.batch()
          + ", v " + v.batch() + ", out " + out.batch());
    }
    if (v.heads() != k.heads() || out.heads() != q.heads() || q.heads() % k.heads() != 0) {
      throw new IllegalArgumentException("head counts do not fit: q " + q.heads() + ", k "
          + k.heads() + ", v " + v.heads() + ", out " + out.heads() + " (expected out = q, v = k"
          + " and k's count dividing q's)");
    }
    if (k.headDim() != q.headDim() || v.headDim() != q.headDim() || out.headDim() != q.headDim()) {
      throw new IllegalArgumentException("head dims differ: q " + q.headDim() + ", k "
          + k.headDim() + ", v " + v.headDim() + ", out " + out.headDim());
    }
    if (v.seq() != k.seq()) {
      throw new IllegalArgumentException("k has " + k.seq() + " rows but v has " + v.seq());
    }
    if (out.seq() != q.seq()) {
      throw new IllegalArgumentException("out has " + out.seq() + " rows but q has " + q.seq());
    }
    long need = (long) q.batch() * q.seq() * q.heads();
    if (lse.length < need) {
      throw new IllegalArgumentException("lse holds " + lse.length + " values, needs " + need);
    }
  }
}
