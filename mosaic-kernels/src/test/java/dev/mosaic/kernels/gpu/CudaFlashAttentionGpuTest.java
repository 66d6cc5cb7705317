package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
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
        Random rnd = new Random(SEEDS.nextLong());
        compare(t, Tensor.randn(rnd, 1f, b, nq, h, d), Tensor.randn(rnd, 1f, b, nk, h, d),
            Tensor.randn(rnd, 1f, b, nk, h, d), (float) (1 / Math.sqrt(d)), m);
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
        Random rnd = new Random(SEEDS.nextLong());
        compare(t, Tensor.randn(rnd, 1f, 2, nq, h, d), Tensor.randn(rnd, 1f, 2, nk, g, d),
            Tensor.randn(rnd, 1f, 2, nk, g, d), (float) (1 / Math.sqrt(d)), m);
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
        Random rnd = new Random(SEEDS.nextLong());
        Tensor q = KernelHostEmulationTest.rounded(Tensor.randn(rnd, 1f, 2, n, hg[0], 32), t);
        Tensor k = KernelHostEmulationTest.rounded(Tensor.randn(rnd, 1f, 2, n, hg[1], 32), t);
        Tensor v = KernelHostEmulationTest.rounded(Tensor.randn(rnd, 1f, 2, n, hg[1], 32), t);
        Tensor expected = Tensor.zeros(2, n, hg[0], 32);
        float[] lseRef = new float[2 * n * hg[0]];
        REF.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v), seqs, 0.2f,
            AttentionMask.causalMask(), BlockView.of(expected), lseRef);
        Tensor out = Tensor.zeros(2, n, hg[0], 32);
        float[] lse = new float[lseRef.length];
        CudaFlashAttention kernel = KERNELS.get(t);
        kernel.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v), seqs, 0.2f,
            AttentionMask.causalMask(), BlockView.of(out), lse);
        double tol = TOL;
        if (kernel.lastKernel().startsWith("mosaic_flash_tc_")) {
          // P rounded to 16 bits: TensorCoreTolerance's bound, from attention on |V|.
          Tensor absV = v.copy();
          double maxAbsV = 0;
          for (int i = 0; i < absV.data().length; i++) {
            absV.data()[i] = Math.abs(absV.data()[i]);
            maxAbsV = Math.max(maxAbsV, absV.data()[i]);
          }
          Tensor expectedAbs = Tensor.zeros(2, n, hg[0], 32);
          REF.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(absV), seqs, 0.2f,
              AttentionMask.causalMask(), BlockView.of(expectedAbs), new float[lseRef.length]);
          tol = TensorCoreTolerance.relative(t, TOL, expected.data(), expectedAbs.data(),
              maxAbsV, n);
        }
        String what = kernel.name() + " varlen H=" + hg[0] + " G=" + hg[1];
        Accuracy.assertClose(out.data(), expected.data(), tol, what);
        for (int i = 0; i < lse.length; i++) {
          if (lseRef[i] == Float.NEGATIVE_INFINITY) {
            assertEquals(Float.NEGATIVE_INFINITY, lse[i], what + " lse " + i);
          } else {
            assertEquals(lseRef[i], lse[i], TOL * Math.max(1, Math.abs(lseRef[i])),
                what + " lse " + i);
          }
        }
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
        Random rnd = new Random(SEEDS.nextLong());
        Tensor q = Tensor.randn(rnd, 1f, 2, n, 3, 40);
        Tensor k = Tensor.randn(rnd, 1f, 2, n, 3, 40);
        Tensor v = Tensor.randn(rnd, 1f, 2, n, 3, 40);
        Tensor expected = Tensor.zeros(2, n, 3, 40);
        float[] lseRef = new float[2 * n * 3];
        REF.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v), s, 0.2f, m,
            BlockView.of(expected), lseRef);
        Tensor out = Tensor.zeros(2, n, 3, 40);
        float[] lse = new float[2 * n * 3];
        KERNELS.get(GpuDtype.FP32).forwardVarlen(BlockView.of(q), BlockView.of(k),
            BlockView.of(v), s, 0.2f, m, BlockView.of(out), lse);
        Accuracy.assertClose(out.data(), expected.data(), TOL, "varlen " + m + " " + s);
        for (int i = 0; i < lse.length; i++) {
          assertEquals(lseRef[i], lse[i], TOL * Math.max(1, Math.abs(lseRef[i])), "lse " + i);
        }
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
    for (int i = 0; i < 300; i++) {
      assertEquals(expectedLse[i], accLse[i], 1e-5 * Math.max(1, Math.abs(expectedLse[i])));
    }
  }

  @Test
  void namesTheDeviceAndWhereTheKernelsCameFrom() {
    String name = KERNELS.get(GpuDtype.BF16).name();
    assertTrue(name.startsWith("cuda-flash(bf16, device 0 "), name);
    assertTrue(name.contains("from fatbin") || name.contains("from NVRTC"), name);
  }

  private static void compare(GpuDtype type, Tensor q, Tensor k, Tensor v, float scale,
      AttentionMask mask) {
    int[] s = q.shape();
    Tensor qr = KernelHostEmulationTest.rounded(q, type);
    Tensor kr = KernelHostEmulationTest.rounded(k, type);
    Tensor vr = KernelHostEmulationTest.rounded(v, type);
    Tensor expected = Tensor.zeros(s);
    int rows = q.size() / s[s.length - 1];
    float[] lseRef = new float[rows];
    REF.forward(BlockView.of(qr), BlockView.of(kr), BlockView.of(vr), scale, mask,
        BlockView.of(expected), lseRef);
    Tensor out = Tensor.zeros(s);
    float[] lse = new float[rows];
    CudaFlashAttention kernel = KERNELS.get(type);
    kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
        BlockView.of(out), lse);
    String what = kernel.name() + " " + mask + " " + Arrays.toString(s) + " " + kernel.lastKernel();
    double tol = TOL;
    if (kernel.lastKernel().startsWith("mosaic_flash_tc_")) {
      // P rounded to 16 bits on tensor cores: TensorCoreTolerance's bound, from attention on |V|.
      Tensor absV = vr.copy();
      double maxAbsV = 0;
      float[] a = absV.data();
      for (int i = 0; i < a.length; i++) {
        a[i] = Math.abs(a[i]);
        maxAbsV = Math.max(maxAbsV, a[i]);
      }
      Tensor expectedAbs = Tensor.zeros(s);
      REF.forward(BlockView.of(qr), BlockView.of(kr), BlockView.of(absV), scale, mask,
          BlockView.of(expectedAbs), new float[rows]);
      tol = TensorCoreTolerance.relative(type, TOL, expected.data(), expectedAbs.data(), maxAbsV,
          k.shape()[k.shape().length - 3]);
    }
    Accuracy.assertClose(out.data(), expected.data(), tol, what);
    for (int i = 0; i < rows; i++) {
      if (lseRef[i] == Float.NEGATIVE_INFINITY) {
        assertEquals(Float.NEGATIVE_INFINITY, lse[i], what + " lse " + i);
      } else {
        assertEquals(lseRef[i], lse[i], TOL * Math.max(1, Math.abs(lseRef[i])),
            what + " lse " + i);
      }
    }
  }
}
