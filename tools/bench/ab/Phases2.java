import dev.mosaic.kernels.simd.*;
import java.util.*;
import java.lang.management.*;
public class Phases2 {
  static long cpu() { return ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime(); }
  public static void main(String[] args) {
    FlashOps ops = VectorizationProvider.ops();
    int W = 64, KT = 64;
    for (String ds : args[0].split(",")) {
      int d = Integer.parseInt(ds);
      Random r = new Random(1);
      float[] k = new float[KT * d], qt = new float[d * W], st = new float[KT * W];
      for (int i = 0; i < k.length; i++) k[i] = (float) r.nextGaussian();
      for (int i = 0; i < qt.length; i++) qt[i] = (float) r.nextGaussian() * 0.1f;
      float[] m = new float[W];
      int iters = 100000 * 16 / d;
      double[] t = new double[2];
      for (int rep = 0; rep < 6; rep++) {
        Arrays.fill(t, 0);
        for (int round = 0; round < 10; round++) {
          long s0 = cpu();
          for (int i = 0; i < iters / 10; i++) { ops.gemm(k, 0, d, KT, d, qt, 0, W, st, 0, W, W, false); Arrays.fill(m, -1e30f); ops.colMax(st, 0, W, KT, W, m); }
          long s1 = cpu();
          for (int i = 0; i < iters / 10; i++) { Arrays.fill(m, -1e30f); ops.scores(k, 0, d, KT, d, qt, 0, W, st, 0, W, W, m); }
          long s2 = cpu();
          t[0] += s1 - s0; t[1] += s2 - s1;
        }
      }
      System.out.printf("%s d=%d: gemm+colMax %.0f ns/tile, scores %.0f ns/tile, x%.2f%n", ops.name(), d, t[0] / iters, t[1] / iters, t[0] / t[1]);
    }
  }
}
