import dev.mosaic.spark.model.ExactGelu;
import java.lang.management.*;
public class GeluBench {
  static long cpu() { return ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime(); }
  public static void main(String[] a) {
    int n = 1 << 20; float[] x = new float[n]; java.util.Random r = new java.util.Random(1);
    for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * 2);
    double best0 = 1e9, best1 = 1e9;
    for (int rep = 0; rep < 8; rep++) {
      float[] y = x.clone();
      long s = cpu(); for (int i = 0; i < n; i++) y[i] = ExactGelu.apply(y[i]); long t0 = cpu() - s;
      float[] z = x.clone();
      s = cpu(); ExactGelu.applyInPlace(z); long t1 = cpu() - s;
      best0 = Math.min(best0, (double) t0 / n); best1 = Math.min(best1, (double) t1 / n);
    }
    System.out.printf("GELU per element, 1 thread CPU time: double-erf series %.1f ns, SIMD %.2f ns, x%.0f%n", best0, best1, best0 / best1);
  }
}
