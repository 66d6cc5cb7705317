package dev.mosaic.spark.cli;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.CudaFlashAttention;
import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.kernels.gpu.TensorCoreTolerance;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.gpu.GpuBinding;
import dev.mosaic.spark.gpu.NcclRendezvous;
import dev.mosaic.spark.gpu.ThreadAllGather;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code mosaic selftest}: on every machine, the CPU kernel's grouped-query attention against the
 * double-precision reference ({@link GqaSelftest}); on a GPU machine also the CUDA kernels against
 * the CPU kernel on fresh random inputs (every dtype, the masks a ring uses), their grouped-query
 * attention against the reference, the GPU LSE merge with {@link LseMerge}, and with two or more
 * GPUs an NCCL ring (one rank per GPU, threads of this JVM, through the same
 * {@link NcclRendezvous} a Spark task uses) with the single-device result; prints each relative
 * error. Exit codes: 0 all within tolerance (without a GPU: the CPU checks, and it says why the
 * GPU ones did not run); 1 a comparison failed; 3 no GPU and {@code --require-gpu}.
 */
public final class SelftestCommand {
  public static final String USAGE = String.join("\n",
      "usage: mosaic selftest [--seed N] [--require-gpu]",
      "  Checks grouped-query attention (8 query heads over 2 K/V heads) on the CPU kernel against",
      "  the double-precision reference. On a GPU: also the CUDA flash and merge kernels (fp32,",
      "  fp16, bf16; no mask, causal with offsets, key bound) against the CPU kernel, their",
      "  grouped-query attention against the reference and, with 2+ GPUs, an NCCL ring; prints",
      "  the errors. Exit 0 all pass, 1 a comparison failed. Without a GPU it says why and exits",
      "  0 after the CPU check (3 with --require-gpu).");
  /** Relative L2 error allowed against the CPU kernel (both accumulate in fp32). */
  public static final double TOLERANCE = 2e-5;
  public static final int EXIT_FAILED = 1;
  public static final int EXIT_NO_GPU = 3;

  private SelftestCommand() {}

  public static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("selftest", args, Set.of("seed"), Set.of("require-gpu"));
    long seed = f.longValue("seed", new Random().nextLong());
    out.println("selftest: seed " + seed);
    Random rnd = new Random(seed);
    int failures = 0;
    try (CpuFlashAttention cpu = new CpuFlashAttention()) {
      out.println("selftest: " + cpu.name());
      for (AttentionMask m : GqaSelftest.MASKS) {
        // One fp32 kernel against double: CpuFlashAttentionTest's 1e-5 model, inside TOLERANCE.
        GqaSelftest.Case c = GqaSelftest.Case.random(rnd, GpuDtype.FP32, m);
        failures += GqaSelftest.judge(out, "cpu", c, c.run(cpu), TOLERANCE) ? 0 : 1;
      }
      if (!Gpu.available()) {
        out.println("selftest: no usable GPU: " + Gpu.unavailableReason());
        out.println("selftest: GPU comparisons not run ('mosaic doctor' lists what is missing;"
            + " the CPU path needs no GPU)");
        if (failures > 0) {
          out.println("selftest: " + failures + " comparison(s) FAILED");
          return EXIT_FAILED;
        }
        out.println("selftest: CPU comparisons within " + TOLERANCE);
        return f.has("require-gpu") ? EXIT_NO_GPU : 0;
      }
      out.println("selftest: " + Gpu.report().devices().size() + " GPU(s): "
          + Gpu.report().devices());
      for (GpuDtype t : GpuDtype.values()) {
        try (CudaFlashAttention gpu = CudaFlashAttention.open(0, t)) {
          out.println("selftest: " + gpu.name());
          for (int[] s : new int[][] {{1, 1, 1, 1, 8}, {2, 300, 517, 4, 64}, {1, 129, 64, 2, 128},
              {1, 70, 90, 3, 40}}) {
            int nk = s[2];
            for (AttentionMask m : new AttentionMask[] {AttentionMask.NONE,
                AttentionMask.causalMask().at(nk / 2, 0), new AttentionMask(true, 5, 2, nk / 2 + 1)}) {
              failures += compareKernel(out, rnd, cpu, gpu, t, s, m) ? 0 : 1;
            }
          }
          for (AttentionMask m : GqaSelftest.MASKS) {
            failures += compareGqa(out, rnd, gpu, t, m) ? 0 : 1;
          }
          if (t == GpuDtype.FP32) {
            failures += compareMerge(out, rnd, gpu) ? 0 : 1;
          }
        }
      }
      int gpus = Gpu.report().devices().size();
      if (gpus > 1) {
        failures += compareRing(out, rnd, cpu, gpus) ? 0 : 1;
      } else {
        out.println("selftest: one GPU: NCCL ring skipped (needs 2+)");
      }
    } catch (RuntimeException e) {
      out.println("selftest: FAILED with " + e);
      return EXIT_FAILED;
    }
    out.println(failures == 0 ? "selftest: all comparisons within " + TOLERANCE
        : "selftest: " + failures + " comparison(s) FAILED");
    return failures == 0 ? 0 : EXIT_FAILED;
  }

  private static boolean compareKernel(PrintStream out, Random rnd, CpuFlashAttention cpu,
      CudaFlashAttention gpu, GpuDtype t, int[] s, AttentionMask mask) {
    int b = s[0];
    int nq = s[1];
    int nk = s[2];
    int h = s[3];
    int d = s[4];
    Tensor q = rounded(Tensor.randn(rnd, 1f, b, nq, h, d), t);
    Tensor k = rounded(Tensor.randn(rnd, 1f, b, nk, h, d), t);
    Tensor v = rounded(Tensor.randn(rnd, 1f, b, nk, h, d), t);
    float scale = (float) (1 / Math.sqrt(d));
    Tensor want = Tensor.zeros(b, nq, h, d);
    Tensor got = Tensor.zeros(b, nq, h, d);
    float[] wantLse = new float[b * nq * h];
    float[] gotLse = new float[b * nq * h];
    cpu.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
        BlockView.of(want), wantLse);
    gpu.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
        BlockView.of(got), gotLse);
    double err = Math.max(relativeError(got.data(), want.data()), lseError(gotLse, wantLse));
    double tol = !ranOnTensorCores(gpu) ? TOLERANCE
        : tensorCoreTolerance(t, cpu, q, k, v, scale, mask, want);
    return report(out, String.format(Locale.ROOT, "flash %-4s b=%d nq=%d nk=%d h=%d d=%d %s",
        t.name().toLowerCase(Locale.ROOT), b, nq, nk, h, d, maskName(mask)), err, tol);
  }

  /**
   * The CUDA kernel with K/V holding fewer heads than Q (the launch carries kvHeads) against the
   * double-precision reference on the same rounded inputs; the CPU-kernel tolerance, plus
   * TensorCoreTolerance's bound when the tensor-core kernel ran.
   */
  private static boolean compareGqa(PrintStream out, Random rnd, CudaFlashAttention gpu,
      GpuDtype t, AttentionMask mask) {
    GqaSelftest.Case c = GqaSelftest.Case.random(rnd, t, mask);
    GqaSelftest.Result got = c.run(gpu);
    double tol = !ranOnTensorCores(gpu) ? TOLERANCE : tensorCoreTolerance(t,
        new ReferenceAttention(), c.q(), c.k(), c.v(), c.scale(), mask, c.want());
    return GqaSelftest.judge(out, t.name().toLowerCase(Locale.ROOT), c, got, tol);
  }

  private static boolean ranOnTensorCores(CudaFlashAttention gpu) {
    return gpu.lastKernel().startsWith("mosaic_flash_tc_");
  }

  /**
   * Tensor cores round P to 16 bits: TOLERANCE plus the bound of {@link TensorCoreTolerance},
   * which needs attention on |V| ({@code reference} on the same Q, K and mask) and the largest |v|.
   */
  private static double tensorCoreTolerance(GpuDtype t, AttentionKernel reference, Tensor q,
      Tensor k, Tensor v, float scale, AttentionMask mask, Tensor want) {
    Tensor absV = v.abs();
    double maxAbsV = absV.maxAbs();
    Tensor wantAbs = Tensor.zeros(want.shape());
    int[] s = q.shape();
    reference.forward(BlockView.of(q), BlockView.of(k), BlockView.of(absV), scale, mask,
        BlockView.of(wantAbs), new float[q.size() / s[s.length - 1]]);
    return TensorCoreTolerance.relative(t, TOLERANCE, want.data(), wantAbs.data(), maxAbsV,
        k.dim(1));
  }

  private static boolean compareMerge(PrintStream out, Random rnd, CudaFlashAttention gpu) {
    Tensor acc = Tensor.randn(rnd, 1f, 2, 100, 4, 64);
    Tensor part = Tensor.randn(rnd, 1f, 2, 100, 4, 64);
    float[] accLse = new float[800];
    float[] partLse = new float[800];
    for (int i = 0; i < 800; i++) {
      accLse[i] = i % 9 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian() * 4;
      partLse[i] = i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian() * 4;
    }
    Tensor want = acc.copy();
    float[] wantLse = accLse.clone();
    LseMerge.merge(BlockView.of(want), wantLse, BlockView.of(part), partLse);
    gpu.merge(BlockView.of(acc), accLse, BlockView.of(part), partLse);
    double err = Math.max(relativeError(acc.data(), want.data()), lseError(accLse, wantLse));
    return report(out, "lse merge b=2 s=100 h=4 d=64", err);
  }

  /** Ring attention over one NCCL rank per GPU (threads of this JVM) against the CPU kernel. */
  private static boolean compareRing(PrintStream out, Random rnd, CpuFlashAttention cpu,
      int gpus) {
    int total = 1000 * gpus + 37;
    int h = 4;
    int d = 64;
    Tensor q = Tensor.randn(rnd, 1f, 1, total, h, d);
    Tensor k = Tensor.randn(rnd, 1f, 1, total, h, d);
    Tensor v = Tensor.randn(rnd, 1f, 1, total, h, d);
    float scale = 0.125f;
    AttentionMask mask = AttentionMask.causalMask();
    Tensor want = Tensor.zeros(1, total, h, d);
    cpu.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
        BlockView.of(want), new float[total * h]);
    Tensor got = Tensor.zeros(1, total, h, d);
    ShardLayout layout = ShardLayout.contiguous(total, gpus);
    ThreadAllGather gather = new ThreadAllGather(gpus, Duration.ofSeconds(120));
    ExecutorService pool = Executors.newFixedThreadPool(gpus);
    try {
      List<Future<Long>> ranks = new ArrayList<>();
      for (int r = 0; r < gpus; r++) {
        int rank = r;
        ranks.add(pool.submit(() -> {
          int from = 0;
          for (int i = 0; i < rank; i++) {
            from += layout.size(i);
          }
          int rows = layout.size(rank);
          try (Communicator comm = NcclRendezvous.connect(rank, gpus, "localhost",
              "selftest rank " + rank, () -> new GpuBinding.Binding(rank, Integer.toString(rank),
                  "selftest: GPU " + rank), gather.rank(rank), null, Duration.ofSeconds(120));
              CudaFlashAttention kernel = CudaFlashAttention.open(rank, GpuDtype.FP32);
              RingStrategy ring = new RingStrategy(comm, layout, kernel)) {
            ring.attend(BlockView.of(q).rows(from, rows), BlockView.of(k).rows(from, rows),
                BlockView.of(v).rows(from, rows), scale, mask, BlockView.of(got).rows(from, rows));
            return comm.bytesSent();
          }
        }));
      }
      long bytes = 0;
      for (Future<Long> f : ranks) {
        bytes += f.get();
      }
      out.println("selftest: NCCL ring over " + gpus + " GPUs moved " + (bytes >> 20) + " MiB");
    } catch (Exception e) {
      out.println("selftest: NCCL ring FAILED: " + e);
      return false;
    } finally {
      pool.shutdownNow();
    }
    return report(out, "nccl ring p=" + gpus + " n=" + total + " causal", relativeError(
        got.data(), want.data()));
  }

  private static boolean report(PrintStream out, String what, double err) {
    return report(out, what, err, TOLERANCE);
  }

  static boolean report(PrintStream out, String what, double err, double tol) {
    boolean ok = err < tol;
    out.printf(Locale.ROOT, "selftest: %-48s rel err %.2e %s%s%n", what, err, ok ? "ok" : "FAILED",
        tol == TOLERANCE ? "" : String.format(Locale.ROOT, " (tensor cores, tolerance %.1e)", tol));
    return ok;
  }

  private static String maskName(AttentionMask m) {
    if (m.isNone()) {
      return "no mask";
    }
    return (m.causal() ? "causal@" + m.queryOffset() + "/" + m.keyOffset() : "")
        + (m.keyLimit() != Long.MAX_VALUE ? " keys<" + m.keyLimit() : "");
  }

  static Tensor rounded(Tensor t, GpuDtype type) {
    float[] x = t.data();
    for (int i = 0; i < x.length; i++) {
      x[i] = type.round(x[i]);
    }
    return t;
  }

  /** {@link RelativeError}, with a NaN anywhere reported as +inf (it prints as a failure). */
  static double relativeError(float[] a, float[] b) {
    double e = dev.mosaic.kernels.RelativeError.of(a, b);
    return Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
  }

  /** Largest relative LSE difference; -inf must match exactly. */
  static double lseError(float[] a, float[] b) {
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      if (b[i] == Float.NEGATIVE_INFINITY || a[i] == Float.NEGATIVE_INFINITY) {
        if (a[i] != b[i]) {
          return Double.POSITIVE_INFINITY;
        }
        continue;
      }
      worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
    }
    return worst;
  }
}
