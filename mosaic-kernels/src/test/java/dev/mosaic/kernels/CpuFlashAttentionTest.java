package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.ScalarFlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class CpuFlashAttentionTest {
  private static final double TOL = 1e-5;
  private static final Random SEEDS = TestSeed.random();
  private static final List<AttentionKernel> KERNELS = new ArrayList<>();
  private static final ReferenceAttention REF = new ReferenceAttention();

  @BeforeAll
  static void kernels() {
    KERNELS.add(new CpuFlashAttention(1));
    KERNELS.add(new CpuFlashAttention(2));
    KERNELS.add(new CpuFlashAttention(3, new ScalarFlashOps()));
  }

  @AfterAll
  static void close() {
    KERNELS.forEach(AttentionKernel::close);
  }

  @Test
  void simdIsUsedUnderTests() {
    // Surefire starts the JVM with --add-modules jdk.incubator.vector: the SIMD path must be live.
    FlashOps ops = VectorizationProvider.ops();
    assertTrue(ops.name().startsWith("panama"), "expected SIMD ops, got " + ops.name() + ": "
        + VectorizationProvider.choice().reason());
  }

  static Stream<Arguments> shapes() {
    return KernelShapes.common();
  }

  @ParameterizedTest(name = "b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceWithoutMask(int b, int nq, int nk, int h, int d) {
    check(b, nq, nk, h, d, AttentionMask.NONE);
  }

  @ParameterizedTest(name = "causal b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceCausal(int b, int nq, int nk, int h, int d) {
    check(b, nq, nk, h, d, AttentionMask.causalMask());
  }

  @ParameterizedTest(name = "causal with offsets b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceCausalWithGlobalOffsets(int b, int nq, int nk, int h, int d) {
    // A ring step: the query block sits after the key block, partly overlapping.
    check(b, nq, nk, h, d, AttentionMask.causalMask().at(nk / 2 + 3, 0));
    // Key block entirely after the queries: every row fully masked.
    check(b, nq, nk, h, d, AttentionMask.causalMask().at(0, nq + 1));
  }

  @ParameterizedTest(name = "key bound b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceWithKeyBound(int b, int nq, int nk, int h, int d) {
    check(b, nq, nk, h, d, AttentionMask.keyLimit(Math.max(1, nk / 3)));
    check(b, nq, nk, h, d, new AttentionMask(true, 5, 2, nk / 2 + 1));
  }

  @Test
  void fullyMaskedRowsGiveZeroAndMinusInfinity() {
    Random rnd = new Random(SEEDS.nextLong());
    int nq = 70;
    int nk = 90;
    Tensor q = Tensor.randn(rnd, 1f, nq, 2, 16);
    Tensor k = Tensor.randn(rnd, 1f, nk, 2, 16);
    Tensor v = Tensor.randn(rnd, 1f, nk, 2, 16);
    for (AttentionKernel kernel : KERNELS) {
      Tensor out = Tensor.zeros(nq, 2, 16);
      java.util.Arrays.fill(out.data(), Float.NaN);
      float[] lse = new float[nq * 2];
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.25f,
          AttentionMask.keyLimit(0), BlockView.of(out), lse);
      for (float x : out.data()) {
        assertEquals(0f, x, kernel.name());
      }
      for (float x : lse) {
        assertEquals(Float.NEGATIVE_INFINITY, x, kernel.name());
      }
    }
  }

  @Test
  void largeScoresDoNotOverflow() {
    // Scores in the thousands: a naive exp would overflow. fp32 itself rounds a score s by up to
    // |s|·2^-24, which moves its softmax weight by as much, so the bound grows with the largest
    // score (Accuracy.scoreError, here ~1e-2); the point of the test is no inf/NaN and no loss
    // beyond that rounding.
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 30f, 100, 2, 32);
    Tensor k = Tensor.randn(rnd, 30f, 150, 2, 32);
    Tensor v = Tensor.randn(rnd, 1f, 150, 2, 32);
    double maxScore = Accuracy.maxAbsScore(BlockView.of(q), BlockView.of(k), 1f);
    assertTrue(maxScore > 1000, "scores should be large, max " + maxScore);
    compareAll(q, k, v, 1f, AttentionMask.NONE, Accuracy.scoreError(maxScore));
  }

  @Test
  void scoresRisingFromKeyTileToKeyTileAreRedoneInTwoPasses() {
    // Each key tile's keys are longer than the last one's, so the column maxima pass the
    // reference max by more than the lazy-rescaling slack tile after tile: the kernel's one-pass
    // softmax step must notice, undo the tile and redo it in two passes (and at the end the max
    // stops moving, so the one-pass step's results are kept there too). Odd sizes, both masks.
    Random rnd = new Random(SEEDS.nextLong());
    int nq = 70;
    int nk = 453;
    Tensor q = Tensor.randn(rnd, 1f, 1, nq, 2, 16);
    Tensor k = Tensor.randn(rnd, 1f, 1, nk, 2, 16);
    Tensor v = Tensor.randn(rnd, 1f, 1, nk, 2, 16);
    float[] kd = k.data();
    for (int j = 0; j < nk; j++) {
      float grow = 1 + Math.min(j / 64, 5) * 1.5f; // the last tiles alike: the max settles
      for (int i = j * 32; i < (j + 1) * 32; i++) {
        kd[i] *= grow;
      }
    }
    double maxScore = Accuracy.maxAbsScore(BlockView.of(q), BlockView.of(k), 0.5f);
    for (AttentionMask mask : new AttentionMask[] {AttentionMask.NONE,
        AttentionMask.causalMask()}) {
      compareAll(q, k, v, 0.5f, mask, Accuracy.scoreError(maxScore));
    }
    // and both paths of the one-pass step did run
    SoftmaxPassCounter counter = new SoftmaxPassCounter(VectorizationProvider.ops());
    try (CpuFlashAttention kernel = new CpuFlashAttention(1, counter)) {
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.5f, AttentionMask.NONE,
          BlockView.of(Tensor.zeros(1, nq, 2, 16)), new float[nq * 2]);
    }
    assertTrue(counter.redone > 0 && counter.kept > 0,
        "redone " + counter.redone + ", kept " + counter.kept);
  }

  @Test
  void readsStridedViewsOfAPackedProjection() {
    // q, k, v as views into one (seq, 3*E) buffer, as the layer hands them over.
    Random rnd = new Random(SEEDS.nextLong());
    int n = 77;
    int heads = 3;
    int d = 16;
    int e = heads * d;
    float[] packed = Tensor.randn(rnd, 1f, n, 3 * e).data();
    BlockView q = new BlockView(packed, 0, 1, n, heads, d, 3 * e, (long) n * 3 * e);
    BlockView k = new BlockView(packed, e, 1, n, heads, d, 3 * e, (long) n * 3 * e);
    BlockView v = new BlockView(packed, 2 * e, 1, n, heads, d, 3 * e, (long) n * 3 * e);
    Tensor expected = Tensor.zeros(n, heads, d);
    float[] lseRef = new float[n * heads];
    REF.forward(q, k, v, 0.25f, AttentionMask.causalMask(), BlockView.of(expected), lseRef);
    for (AttentionKernel kernel : KERNELS) {
      Tensor out = Tensor.zeros(n, heads, d);
      float[] lse = new float[n * heads];
      kernel.forward(q, k, v, 0.25f, AttentionMask.causalMask(), BlockView.of(out), lse);
      Accuracy.assertClose(out.data(), expected.data(), TOL, kernel.name());
      Accuracy.assertClose(lse, lseRef, TOL, kernel.name() + " lse");
    }
  }

  @Test
  void splitKeysMergeToTheWhole() {
    // The kernel's (out, lse) contract: partials over key blocks merge to full attention.
    Random rnd = new Random(SEEDS.nextLong());
    int nq = 50;
    int nk = 300;
    Tensor q = Tensor.randn(rnd, 1f, nq, 2, 32);
    Tensor k = Tensor.randn(rnd, 1f, nk, 2, 32);
    Tensor v = Tensor.randn(rnd, 1f, nk, 2, 32);
    AttentionMask mask = new AttentionMask(true, 200, 0, 230);
    Tensor expected = Tensor.zeros(nq, 2, 32);
    float[] lseRef = new float[nq * 2];
    REF.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.2f, mask,
        BlockView.of(expected), lseRef);
    AttentionKernel kernel = KERNELS.get(1);
    Tensor acc = Tensor.zeros(nq, 2, 32);
    float[] accLse = new float[nq * 2];
    java.util.Arrays.fill(accLse, Float.NEGATIVE_INFINITY);
    int[] cuts = {0, 17, 100, 101, 250, nk};
    for (int i = cuts.length - 2; i >= 0; i--) { // reverse order on purpose
      int from = cuts[i];
      int len = cuts[i + 1] - from;
      Tensor part = Tensor.zeros(nq, 2, 32);
      float[] partLse = new float[nq * 2];
      kernel.forward(BlockView.of(q), BlockView.of(k).rows(from, len),
          BlockView.of(v).rows(from, len), 0.2f, mask.at(200, from), BlockView.of(part), partLse);
      LseMerge.merge(BlockView.of(acc), accLse, BlockView.of(part), partLse);
    }
    Accuracy.assertClose(acc.data(), expected.data(), TOL, "merged output");
    Accuracy.assertClose(accLse, lseRef, TOL, "merged lse");
  }

  @Test
  void rejectsMismatchedShapes() {
    Tensor q = Tensor.zeros(4, 2, 8);
    Tensor k = Tensor.zeros(5, 2, 8);
    Tensor v = Tensor.zeros(6, 2, 8);
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
        IllegalArgumentException.class,
        () -> KERNELS.get(0).forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 1f,
            AttentionMask.NONE, BlockView.of(Tensor.zeros(4, 2, 8)), new float[8]));
    assertEquals("k has 5 rows but v has 6", e.getMessage());
  }

  private static void check(int b, int nq, int nk, int h, int d, AttentionMask mask) {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 1f, b, nq, h, d);
    Tensor k = Tensor.randn(rnd, 1f, b, nk, h, d);
    Tensor v = Tensor.randn(rnd, 1f, b, nk, h, d);
    compareAll(q, k, v, (float) (1 / Math.sqrt(d)), mask);
  }

  private static void compareAll(Tensor q, Tensor k, Tensor v, float scale, AttentionMask mask) {
    compareAll(q, k, v, scale, mask, 0);
  }

  /** Against the reference, within TOL plus {@code scoreError} (see Accuracy.scoreError). */
  private static void compareAll(Tensor q, Tensor k, Tensor v, float scale, AttentionMask mask,
      double scoreError) {
    int[] s = q.shape();
    Tensor expected = Tensor.zeros(s);
    int rows = q.size() / s[s.length - 1];
    float[] lseRef = new float[rows];
    REF.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
        BlockView.of(expected), lseRef);
    for (AttentionKernel kernel : KERNELS) {
      Tensor out = Tensor.zeros(s);
      float[] lse = new float[rows];
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(out), lse);
      Accuracy.assertClose(out.data(), expected.data(), TOL + scoreError,
          kernel.name() + " " + mask);
      for (int i = 0; i < lse.length; i++) {
        if (lseRef[i] == Float.NEGATIVE_INFINITY) {
          assertEquals(Float.NEGATIVE_INFINITY, lse[i], kernel.name() + " lse " + i);
        } else {
          assertEquals(lseRef[i], lse[i], TOL * Math.max(1, Math.abs(lseRef[i])) + scoreError,
              kernel.name() + " lse " + i);
        }
      }
    }
  }

  @Test
  void outputDoesNotDependOnThreadCount() {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 1f, 1, 300, 1, 64);
    Tensor k = Tensor.randn(rnd, 1f, 1, 300, 1, 64);
    Tensor v = Tensor.randn(rnd, 1f, 1, 300, 1, 64);
    float[][] outs = new float[2][];
    for (int i = 0; i < 2; i++) {
      Tensor out = Tensor.zeros(1, 300, 1, 64);
      KERNELS.get(i).forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.125f,
          AttentionMask.causalMask(), BlockView.of(out), new float[300]);
      outs[i] = out.data();
    }
    assertArrayEquals(outs[0], outs[1]);
  }
}
