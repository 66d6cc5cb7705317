package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.RandomQkv;
import dev.mosaic.test.TestSeed;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA kernel on a real GPU against the double-precision reference (on inputs rounded to the
 * storage dtype), under every mask. Skipped, with the probe's reason, where no GPU is usable.
 */
class CudaFlashAttentionGpuTest {
  private static final Random SEEDS = TestSeed.random();
  private static final ReferenceAttention REF = new ReferenceAttention();
  /** fp32 accumulation on both sides; the GPU's exp2f is within 2 ulp. */
  private static final double TOL = 2e-5;
  private static final Map<GpuDtype, CudaFlashAttention> KERNELS = new EnumMap<>(GpuDtype.class);

  /** Each test is skipped on its own (so reports list them, with the reason). */
  @BeforeEach
  void requireGpu() {
    Assumptions.assumeTrue(CudaFlashAttention.available(),
        () -> "no usable GPU: " + CudaFlashAttention.unavailableReason());
    if (KERNELS.isEmpty()) {
      for (GpuDtype t : GpuDtype.values()) {
        KERNELS.put(t, CudaFlashAttention.open(0, t));
      }
    }
  }

  @AfterAll
  static void close() {
    KERNELS.values().forEach(CudaFlashAttention::close);
  }

  /** The CPU kernel's shapes, plus the largest head-dim bucket (256) only the GPU kernel has. */
  static Stream<Arguments> shapes() {
    return Stream.concat(dev.mosaic.kernels.KernelShapes.common(),
        Stream.of(Arguments.of(1, 300, 257, 2, 256)));
  }

  @ParameterizedTest(name = "b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceUnderEveryMaskAndDtype(int b, int nq, int nk, int h, int d) {
    AttentionMask[] masks = {AttentionMask.NONE, AttentionMask.causalMask(),
        AttentionMask.causalMask().at(nk / 2 + 3, 0), AttentionMask.causalMask().at(0, nq + 1),
        AttentionMask.keyLimit(Math.max(1, nk / 3)), new AttentionMask(true, 5, 2, nk / 2 + 1)};
    for (GpuDtype t : GpuDtype.values()) {
      for (AttentionMask m : masks) {
        compare(t, RandomQkv.draw(new Random(SEEDS.nextLong()), b, nq, nk, h, h, d),
            (float) (1 / Math.sqrt(d)), m);
      }
    }
  }

  /**
   * Grouped-query and multi-query attention (K/V with G heads, G dividing H) on every dtype and
   * kernel the selection picks, against the reference that maps query head h to K/V head
   * h / (H/G); the same host-emulated checks: GroupedQueryEmulationTest.
   */
  @ParameterizedTest(name = "H={0} G={1} nq={2} nk={3} d={4}")
  @org.junit.jupiter.params.provider.CsvSource({"6, 2, 130, 129, 64", "4, 1, 77, 200, 40",
      "6, 3, 65, 66, 128", "8, 2, 300, 257, 256"})
  void groupedQueryAttentionMatchesReference(int h, int g, int nq, int nk, int d) {
    AttentionMask[] masks = {AttentionMask.NONE, AttentionMask.causalMask(),
        AttentionMask.causalMask().at(nk / 2 + 3, 0), new AttentionMask(true, 5, 2, nk / 2 + 1)};
    for (GpuDtype t : GpuDtype.values()) {
      for (AttentionMask m : masks) {
        compare(t, RandomQkv.draw(new Random(SEEDS.nextLong()), 2, nq, nk, h, g, d),
            (float) (1 / Math.sqrt(d)), m);
      }
    }
  }

  @Test
  void groupedQueryVarlenMatchesThePerSequenceReference() {
    int[] lengths = {1, 17, 65, 0, 130};
    int[] valid = {1, 10, 64, 0, 100};
    dev.mosaic.kernels.VarlenSequences seqs = dev.mosaic.kernels.VarlenSequences.of(
        dev.mosaic.kernels.VarlenSequences.offsets(lengths)).withValidKeys(valid);
    int n = seqs.totalQueries();
    for (GpuDtype t : GpuDtype.values()) {
      for (int[] hg : new int[][] {{6, 2}, {4, 1}}) {
        AttentionMask causal = AttentionMask.causalMask();
        RandomQkv qkv =
            RandomQkv.draw(new Random(SEEDS.nextLong()), 2, n, n, hg[0], hg[1], 32).rounded(t);
        RandomQkv.Expected expected = qkv.referenceVarlen(seqs, 0.2f, causal);
        Tensor out = Tensor.zeros(2, n, hg[0], 32);
        float[] lse = new float[expected.lse().length];
        CudaFlashAttention kernel = KERNELS.get(t);
        kernel.forwardVarlen(BlockView.of(qkv.q()), BlockView.of(qkv.k()), BlockView.of(qkv.v()),
            seqs, 0.2f, causal, BlockView.of(out), lse);
        // P rounded to 16 bits on tensor cores: TensorCoreTolerance's bound, from attention on |V|.
        double tol = !kernel.lastKernel().startsWith("mosaic_flash_tc_") ? TOL
            : qkv.tensorCoreTolerance(t, TOL, expected, seqs, 0.2f, causal);
        String what = kernel.name() + " varlen H=" + hg[0] + " G=" + hg[1];
        Accuracy.assertClose(out.data(), expected.out().data(), tol, what);
        Accuracy.assertLseClose(lse, expected.lse(), TOL, 0, what);
      }
    }
  }

  @Test
  void varlenMatchesThePerSequenceReference() {
    int[] lengths = {1, 2, 17, 63, 65, 0, 130, 300};
    int[] valid = {1, 1, 17, 30, 65, 0, 100, 299};
    dev.mosaic.kernels.VarlenSequences seqs =
        dev.mosaic.kernels.VarlenSequences.of(dev.mosaic.kernels.VarlenSequences.offsets(lengths));
    int n = seqs.totalQueries();
    for (dev.mosaic.kernels.VarlenSequences s : List.of(seqs, seqs.withValidKeys(valid))) {
      for (AttentionMask m : new AttentionMask[] {AttentionMask.NONE,
          AttentionMask.causalMask(), new AttentionMask(true, 5, 2, 90)}) {
        RandomQkv qkv = RandomQkv.draw(new Random(SEEDS.nextLong()), 2, n, n, 3, 3, 40);
        RandomQkv.Expected expected = qkv.referenceVarlen(s, 0.2f, m);
        Tensor out = Tensor.zeros(2, n, 3, 40);
        float[] lse = new float[2 * n * 3];
        KERNELS.get(GpuDtype.FP32).forwardVarlen(BlockView.of(qkv.q()), BlockView.of(qkv.k()),
            BlockView.of(qkv.v()), s, 0.2f, m, BlockView.of(out), lse);
        String what = "varlen " + m + " " + s;
        Accuracy.assertClose(out.data(), expected.out().data(), TOL, what);
        Accuracy.assertLseClose(lse, expected.lse(), TOL, 0, what);
      }
    }
  }

  @Test
  void fullyMaskedRowsGiveZeroAndMinusInfinity() {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 1f, 70, 2, 16);
    Tensor k = Tensor.randn(rnd, 1f, 90, 2, 16);
    Tensor out = Tensor.zeros(70, 2, 16);
    Arrays.fill(out.data(), Float.NaN);
    float[] lse = new float[140];
    KERNELS.get(GpuDtype.FP32).forward(BlockView.of(q), BlockView.of(k), BlockView.of(k), 0.25f,
        AttentionMask.keyLimit(0), BlockView.of(out), lse);
    for (float x : out.data()) {
      assertEquals(0f, x);
    }
    for (float x : lse) {
      assertEquals(Float.NEGATIVE_INFINITY, x);
    }
  }

  @Test
  void readsStridedViewsOfAPackedProjection() {
    Random rnd = new Random(SEEDS.nextLong());
    int n = 77;
    int h = 2;
    int d = 32;
    Tensor qkv = Tensor.randn(rnd, 1f, n, 3 * h * d);
    float[] x = qkv.data();
    BlockView q = new BlockView(x, 0, 1, n, h, d, 3 * h * d, (long) n * 3 * h * d);
    BlockView k = new BlockView(x, h * d, 1, n, h, d, 3 * h * d, (long) n * 3 * h * d);
    BlockView v = new BlockView(x, 2 * h * d, 1, n, h, d, 3 * h * d, (long) n * 3 * h * d);
    Tensor expected = Tensor.zeros(n, h, d);
    Tensor actual = Tensor.zeros(n, h, d);
    float[] lse1 = new float[n * h];
    float[] lse2 = new float[n * h];
    REF.forward(q, k, v, 0.2f, AttentionMask.causalMask(), BlockView.of(expected), lse1);
    KERNELS.get(GpuDtype.FP32).forward(q, k, v, 0.2f, AttentionMask.causalMask(),
        BlockView.of(actual), lse2);
    Accuracy.assertClose(actual.data(), expected.data(), TOL, "strided");
  }

  @Test
  void mergeKernelMatchesLseMerge() {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor acc = Tensor.randn(rnd, 1f, 2, 50, 3, 64);
    Tensor part = Tensor.randn(rnd, 1f, 2, 50, 3, 64);
    float[] accLse = new float[300];
    float[] partLse = new float[300];
    for (int i = 0; i < 300; i++) {
      accLse[i] = i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian() * 5;
      partLse[i] = i % 5 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian() * 5;
    }
    Tensor expected = acc.copy();
    float[] expectedLse = accLse.clone();
    LseMerge.merge(BlockView.of(expected), expectedLse, BlockView.of(part), partLse);
    KERNELS.get(GpuDtype.FP32).merge(BlockView.of(acc), accLse, BlockView.of(part), partLse);
    Accuracy.assertClose(acc.data(), expected.data(), 1e-6, "merge");
    Accuracy.assertLseClose(accLse, expectedLse, 1e-5, 0, "merge");
  }

  @Test
  void namesTheDeviceAndWhereTheKernelsCameFrom() {
    String name = KERNELS.get(GpuDtype.BF16).name();
    assertTrue(name.startsWith("cuda-flash(bf16, device 0 "), name);
    assertTrue(name.contains("from fatbin") || name.contains("from NVRTC"), name);
  }

  /**
   * The kernel gets the fp32 draws (it rounds them to {@code type} on upload); the reference the
   * rounded inputs.
   */
  private static void compare(GpuDtype type, RandomQkv qkv, float scale, AttentionMask mask) {
    RandomQkv rounded = qkv.rounded(type);
    RandomQkv.Expected expected = rounded.reference(scale, mask);
    Tensor out = Tensor.zeros(qkv.q().shape());
    float[] lse = new float[expected.lse().length];
    CudaFlashAttention kernel = KERNELS.get(type);
    kernel.forward(BlockView.of(qkv.q()), BlockView.of(qkv.k()), BlockView.of(qkv.v()), scale,
        mask, BlockView.of(out), lse);
    String what = kernel.name() + " " + mask + " " + Arrays.toString(qkv.q().shape()) + " "
        + kernel.lastKernel();
    // P rounded to 16 bits on tensor cores: TensorCoreTolerance's bound, from attention on |V|.
    double tol = !kernel.lastKernel().startsWith("mosaic_flash_tc_") ? TOL
        : rounded.tensorCoreTolerance(type, TOL, expected, null, scale, mask);
    Accuracy.assertClose(out.data(), expected.out().data(), tol, what);
    Accuracy.assertLseClose(lse, expected.lse(), TOL, 0, what);
  }
}
