import dev.mosaic.kernels.simd.*;
import java.util.*;
public class PhasesAfter {
  static long cpu() { return java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime(); }
  public static void main(String[] args) {
    FlashOps ops = VectorizationProvider.ops();
    int W = 64, KT = 64;
    for (String ds : args[0].split(",")) {
      int d = Integer.parseInt(ds);
      Random r = new Random(1);
      float[] k = new float[KT * d], qt = new float[d * W], st = new float[KT * W], ot = new float[d * W], vt = new float[d * KT];
      for (int i = 0; i < k.length; i++) k[i] = (float) r.nextGaussian();
      for (int i = 0; i < qt.length; i++) qt[i] = (float) r.nextGaussian() * 0.1f;
      for (int i = 0; i < vt.length; i++) vt[i] = (float) r.nextGaussian();
      float[] m = new float[W], shift = new float[W], l = new float[W], alpha = new float[W];
      int iters = 200000 * 16 / d;
      double[] t = new double[5];
      for (int rep = 0; rep < 4; rep++) {
        Arrays.fill(t, 0);
        for (int round = 0; round < 5; round++) {
          long s0 = cpu();
          for (int i = 0; i < iters / 5; i++) { Arrays.fill(m, -1e30f); ops.scores(k, 0, d, KT, d, qt, 0, W, st, 0, W, W, m); }
          long s1 = cpu();
          
          long s2 = cpu();
          for (int i = 0; i < iters / 5; i++) { System.arraycopy(m, 0, shift, 0, W); ops.exp2Columns(st, 0, W, KT, W, shift, l); }
          long s3 = cpu();
          
          long s4 = cpu();
          for (int i = 0; i < iters / 5; i++) ops.gemm(vt, 0, KT, d, KT, st, 0, W, ot, 0, W, W, true);
          long s5 = cpu();
          t[0] += s1 - s0; t[1] += s2 - s1; t[2] += s3 - s2; t[3] += s4 - s3; t[4] += s5 - s4;
          // re-randomise st so exp input isn't degenerate
          ops.gemm(k, 0, d, KT, d, qt, 0, W, st, 0, W, W, false);
        }
      }
      double tot = Arrays.stream(t).sum();
      double flops = 4.0 * KT * W * d * iters;
      System.out.printf("%s d=%d: per tile %.0f ns (%.1f GFLOP/s 1 thread): score GEMM + max %.0f%%, (none) %.0f%%, exp2+sum %.0f%%, (rescale skipped) %.0f%%, PV GEMM %.0f%%; score GEMM+max alone %.1f GF/s, PV GEMM alone %.1f GF/s%n",
          ops.name(), d, tot / iters, flops / tot, 100*t[0]/tot, 100*t[1]/tot, 100*t[2]/tot, 100*t[3]/tot, 100*t[4]/tot,
          2.0*KT*W*d*iters/t[0], 2.0*KT*W*d*iters/t[4]);
    }
  }
}
