package dev.mosaic.test;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.kernels.gpu.TensorCoreTolerance;
import java.util.Random;

/**
 * The set-up the GPU kernel tests share: random Q {@code (b, nq, h, d)} and K, V
 * {@code (b, nk, g, d)} (g K/V heads dividing the h query heads; MHA: g = h), the same inputs
 * rounded to a storage dtype (what a kernel storing that dtype sees), the double-precision
 * reference's answer, and {@link TensorCoreTolerance}'s bound, which needs attention on |V|.
 */
public record RandomQkv(Tensor q, Tensor k, Tensor v) {
  private static final ReferenceAttention REF = new ReferenceAttention();

  /** A reference answer: the output and the log-sum-exp per (batch, query, head). */
  public record Expected(Tensor out, float[] lse) {}

  /** Standard normal Q, K and V, drawn in that order. */
  public static RandomQkv draw(Random rnd, int b, int nq, int nk, int h, int g, int d) {
    return draw(rnd, 1f, b, nq, nk, h, g, d);
  }

  /** Q and K with standard deviation {@code qkStd} (large scores), V standard normal. */
  public static RandomQkv draw(Random rnd, float qkStd, int b, int nq, int nk, int h, int g,
      int d) {
    Tensor q = Tensor.randn(rnd, qkStd, b, nq, h, d);
    Tensor k = Tensor.randn(rnd, qkStd, b, nk, g, d);
    return new RandomQkv(q, k, Tensor.randn(rnd, 1f, b, nk, g, d));
  }

  /** Copies rounded to {@code type} (fp32: equal copies). */
  public RandomQkv rounded(GpuDtype type) {
    return new RandomQkv(rounded(q, type), rounded(k, type), rounded(v, type));
  }

  /** A copy of {@code t} with every element rounded to {@code type}. */
  public static Tensor rounded(Tensor t, GpuDtype type) {
    Tensor r = t.copy();
    float[] x = r.data();
    for (int i = 0; i < x.length; i++) {
      x[i] = type.round(x[i]);
    }
    return r;
  }

  public int batch() {
    return q.dim(0);
  }

  public int queries() {
    return q.dim(1);
  }

  public int keys() {
    return k.dim(1);
  }

  public int heads() {
    return q.dim(2);
  }

  public int kvHeads() {
    return k.dim(2);
  }

  public int headDim() {
    return q.dim(3);
  }

  /** {@link ReferenceAttention} on these inputs as they are (round them first if need be). */
  public Expected reference(float scale, AttentionMask mask) {
    return reference(v, null, scale, mask);
  }

  /** The per-sequence reference ({@code forwardVarlen}) on these inputs as they are. */
  public Expected referenceVarlen(VarlenSequences seqs, float scale, AttentionMask mask) {
    return reference(v, seqs, scale, mask);
  }

  /**
   * {@link TensorCoreTolerance#relative} for a kernel that ran on these inputs on tensor cores:
   * {@code fp32Tol} plus the bound for P rounded to 16 bits, from the reference on |V|.
   *
   * @param seqs the packing of a varlen call, or null for a plain forward
   */
  public double tensorCoreTolerance(GpuDtype type, double fp32Tol, Expected expected,
      VarlenSequences seqs, float scale, AttentionMask mask) {
    Tensor absV = v.abs();
    double maxAbsV = absV.maxAbs();
    Expected onAbsV = reference(absV, seqs, scale, mask);
    return TensorCoreTolerance.relative(type, fp32Tol, expected.out().data(),
        onAbsV.out().data(), maxAbsV, keys());
  }

  private Expected reference(Tensor values, VarlenSequences seqs, float scale,
      AttentionMask mask) {
    Tensor out = Tensor.zeros(q.shape());
    float[] lse = new float[batch() * queries() * heads()];
    if (seqs == null) {
      REF.forward(BlockView.of(q), BlockView.of(k), BlockView.of(values), scale, mask,
          BlockView.of(out), lse);
    } else {
      REF.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(values), seqs, scale, mask,
          BlockView.of(out), lse);
    }
    return new Expected(out, lse);
  }
}
