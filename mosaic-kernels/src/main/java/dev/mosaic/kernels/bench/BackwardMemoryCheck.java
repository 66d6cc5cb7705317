package dev.mosaic.kernels.bench;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.CpuFlashAttentionBackward;
import dev.mosaic.kernels.Tensor;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.Random;

/**
 * The backward's O(n) memory, checked by hand (minutes, so not a unit test): one causal forward
 * and backward at n = 65536, 8 heads × 64, inside the heap the JVM was given, e.g.
 * <pre>
 * java -Xmx2g --add-modules jdk.incubator.vector -cp mosaic-kernels/target/classes \
 *     dev.mosaic.kernels.bench.BackwardMemoryCheck 65536 8 64 2
 * </pre>
 * The eight n×(heads·headDim) fp32 tensors (q, k, v, O, dO, dQ, dK, dV) take 1.07 GB of it.
 */
public final class BackwardMemoryCheck {
  private BackwardMemoryCheck() {}

  public static void main(String[] args) {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 65536;
    int heads = args.length > 1 ? Integer.parseInt(args[1]) : 8;
    int d = args.length > 2 ? Integer.parseInt(args[2]) : 64;
    int threads = args.length > 3 ? Integer.parseInt(args[3]) : 2;
    Random rnd = new Random(7);
    BlockView q = BlockView.of(Tensor.randn(rnd, 1f, n, heads, d));
    BlockView k = BlockView.of(Tensor.randn(rnd, 1f, n, heads, d));
    BlockView v = BlockView.of(Tensor.randn(rnd, 1f, n, heads, d));
    BlockView dOut = BlockView.of(Tensor.randn(rnd, 1f, n, heads, d));
    BlockView out = BlockView.of(Tensor.zeros(n, heads, d));
    BlockView dq = BlockView.of(Tensor.zeros(n, heads, d));
    BlockView dk = BlockView.of(Tensor.zeros(n, heads, d));
    BlockView dv = BlockView.of(Tensor.zeros(n, heads, d));
    float[] lse = new float[n * heads];
    float scale = (float) (1 / Math.sqrt(d));
    AttentionMask mask = AttentionMask.causalMask();
    long inputs = 8L * n * heads * d * 4;
    System.out.printf("n=%d, %d heads x %d, causal, %d threads; the 8 tensors take %.2f GB,"
        + " max heap %.2f GB%n", n, heads, d, threads, inputs / 1e9,
        Runtime.getRuntime().maxMemory() / 1e9);
    try (CpuFlashAttention fwd = new CpuFlashAttention(threads);
        CpuFlashAttentionBackward bwd = new CpuFlashAttentionBackward(threads)) {
      long t0 = System.nanoTime();
      fwd.forward(q, k, v, scale, mask, out, lse);
      long t1 = System.nanoTime();
      bwd.backward(q, k, v, out, lse, dOut, scale, mask, dq, dk, dv, false);
      long t2 = System.nanoTime();
      double flops = 4.0 * n * n * d * heads * 0.5;
      System.out.printf("forward %.1f s (%.1f GFLOP/s), backward %.1f s (%.1f GFLOP/s)%n",
          (t1 - t0) / 1e9, flops / (t1 - t0), (t2 - t1) / 1e9, 2.5 * flops / (t2 - t1));
    }
    long peak = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP) {
        peak += pool.getPeakUsage().getUsed();
      }
    }
    System.out.printf("heap pools' peak use (sum): %.2f GB; live after GC: %.2f GB%n", peak / 1e9,
        KernelBenchmark.liveHeap() / 1e9);
  }
}
