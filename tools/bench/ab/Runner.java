import dev.mosaic.kernels.*;
import java.util.*;
public class Runner {
  final Map<String, Object[]> cache = new HashMap<>();
  final Map<Integer, CpuFlashAttention> kernels = new HashMap<>();
  /** median seconds of reps calls; also returns checksum via last element */
  public double[] time(int threads, int heads, int d, int n, boolean causal, int reps) {
    CpuFlashAttention kernel = kernels.computeIfAbsent(threads, CpuFlashAttention::new);
    String key = heads + "/" + d + "/" + n;
    Object[] t = cache.computeIfAbsent(key, kk -> {
      Random rnd = new Random(42);
      return new Object[] {Tensor.randn(rnd, 1f, n, heads, d), Tensor.randn(rnd, 1f, n, heads, d),
          Tensor.randn(rnd, 1f, n, heads, d), Tensor.zeros(n, heads, d), new float[n * heads]};
    });
    Tensor q = (Tensor) t[0], k = (Tensor) t[1], v = (Tensor) t[2], out = (Tensor) t[3];
    float[] lse = (float[]) t[4];
    AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
    double[] times = new double[reps];
    for (int i = 0; i < reps; i++) {
      long s = java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), (float) (1 / Math.sqrt(d)), mask, BlockView.of(out), lse);
      times[i] = (java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime() - s) / 1e9;
    }
    Arrays.sort(times);
    double sum = 0; for (float x : out.data()) sum += x;
    return new double[] {times[reps / 2], sum};
  }
}
