package dev.mosaic.spark.cli;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.GpuDtype;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * {@code mosaic selftest}'s grouped-query case: {@value #HEADS} query heads over {@value #KV_HEADS}
 * K/V heads (each K/V head shared by four query heads), {@value #N} rows (odd, so the last tile
 * is partial), head dim {@value #D}, with and without the causal mask, one kernel (the CPU kernel,
 * or a CUDA kernel on inputs rounded to its storage type) against the double-precision
 * {@link ReferenceAttention} on the same inputs.
 */
public final class GqaSelftest {
  public static final int BATCH = 2;
  public static final int HEADS = 8;
  public static final int KV_HEADS = 2;
  public static final int N = 77;
  public static final int D = 64;
  /** The masks checked: none, and causal (the one a ring's diagonal step uses). */
  public static final List<AttentionMask> MASKS =
      List.of(AttentionMask.NONE, AttentionMask.causalMask());

  private GqaSelftest() {}

  /** One case: inputs rounded to what the kernel stores, and the reference's answer on them. */
  public record Case(GpuDtype storage, Tensor q, Tensor k, Tensor v, float scale,
      AttentionMask mask, Tensor want, float[] wantLse) {

    /** Random Q (HEADS heads) and K/V (KV_HEADS heads) rounded to {@code storage}. */
    public static Case random(Random rnd, GpuDtype storage, AttentionMask mask) {
      Tensor q = SelftestCommand.rounded(Tensor.randn(rnd, 1f, BATCH, N, HEADS, D), storage);
      Tensor k = SelftestCommand.rounded(Tensor.randn(rnd, 1f, BATCH, N, KV_HEADS, D), storage);
      Tensor v = SelftestCommand.rounded(Tensor.randn(rnd, 1f, BATCH, N, KV_HEADS, D), storage);
      float scale = (float) (1 / Math.sqrt(D));
      Tensor want = Tensor.zeros(BATCH, N, HEADS, D);
      float[] wantLse = new float[BATCH * N * HEADS];
      new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
          mask, BlockView.of(want), wantLse);
      return new Case(storage, q, k, v, scale, mask, want, wantLse);
    }

    /** Runs {@code kernel} on this case: output and LSE. */
    public Result run(AttentionKernel kernel) {
      Tensor out = Tensor.zeros(BATCH, N, HEADS, D);
      float[] lse = new float[BATCH * N * HEADS];
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(out), lse);
      return new Result(out, lse);
    }
  }

  /** A kernel's answer to a {@link Case}. */
  public record Result(Tensor out, float[] lse) {}

  /**
   * Prints one line — what was checked (backend, heads, K/V heads, n, d, mask), the largest
   * element-wise difference and the relative error (the larger of the output's norm-wise error
   * and the LSE's largest relative error) — and says whether the relative error is below
   * {@code tol}.
   */
  public static boolean judge(PrintStream out, String backend, Case c, Result got, double tol) {
    double err = Math.max(SelftestCommand.relativeError(got.out().data(), c.want().data()),
        SelftestCommand.lseError(got.lse(), c.wantLse()));
    String what = String.format(Locale.ROOT,
        "gqa %-4s heads=%d kv heads=%d b=%d n=%d d=%d %s, max abs err %.1e,", backend, HEADS,
        KV_HEADS, BATCH, N, D, c.mask().isNone() ? "no mask" : "causal",
        maxAbsError(got.out().data(), c.want().data()));
    return SelftestCommand.report(out, what, err, tol);
  }

  /** Largest |a - b| (NaN anywhere gives NaN, which prints as such). */
  static double maxAbsError(float[] a, float[] b) {
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      double e = Math.abs((double) a[i] - b[i]);
      if (Double.isNaN(e)) {
        return Double.NaN;
      }
      worst = Math.max(worst, e);
    }
    return worst;
  }
}
