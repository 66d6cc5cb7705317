package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.simd.BackwardVectorization;
import dev.mosaic.kernels.simd.ScalarFlashOps;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU attention backward against the double-precision reference, on the forward kernel's
 * shapes and masks, SIMD and scalar, over heads and within one head (both threading modes).
 */
class CpuFlashAttentionBackwardTest {
  private static final Random SEEDS = TestSeed.random();
  private static final List<CpuFlashAttentionBackward> KERNELS = new ArrayList<>();
  private static CpuFlashAttention forward;
  /** The largest error seen, as a fraction of its bound: printed to see the bound's margin. */
  private static double worst;

  @BeforeAll
  static void kernels() {
    forward = new CpuFlashAttention(2);
    KERNELS.add(new CpuFlashAttentionBackward(1));
    KERNELS.add(new CpuFlashAttentionBackward(2)); // within one head when batch·heads < 4
    KERNELS.add(new CpuFlashAttentionBackward(3, new ScalarFlashOps()));
  }

  @AfterAll
  static void close() {
    KERNELS.forEach(CpuFlashAttentionBackward::close);
    forward.close();
    System.out.printf("worst gradient error: %.3f of its bound%n", worst);
  }

  @Test
  void simdIsUsedUnderTests() {
    assertTrue(BackwardVectorization.ops().name().startsWith("panama"),
        "expected SIMD ops, got " + BackwardVectorization.choice());
    assertTrue(KERNELS.get(2).name().contains("scalar"), KERNELS.get(2).name());
  }

  /**
   * {@link KernelShapes#common()} with its one large case (1000 × 1037 × 8 heads × 64) cut to
   * 300 × 333 × 2 heads: the double reference backward took minutes on it, and the smaller case
   * still crosses several tiles both ways, with ragged ends, within one head (2 heads < 2·threads).
   */
  static Stream<Arguments> shapes() {
    return KernelShapes.common().map(a -> (int) a.get()[1] == 1000
        ? Arguments.of(1, 300, 333, 2, 64) : a);
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
    check(b, nq, nk, h, d, AttentionMask.causalMask().at(nk / 2 + 3, 0));
    check(b, nq, nk, h, d, AttentionMask.causalMask().at(0, nq + 1)); // every query sees nothing
  }

  @ParameterizedTest(name = "key bound b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceWithKeyBound(int b, int nq, int nk, int h, int d) {
    check(b, nq, nk, h, d, AttentionMask.keyLimit(Math.max(1, nk / 3)));
    check(b, nq, nk, h, d, new AttentionMask(true, 5, 2, nk / 2 + 1));
  }

  @Test
  void queriesThatSeeNoKeyGetZeroGradients() {
    // Causal with the key block starting at global 40: queries 0..39 see nothing.
    Random rnd = new Random(SEEDS.nextLong());
    int nq = 100;
    int nk = 70;
    AttentionMask mask = AttentionMask.causalMask().at(0, 40);
    Case c = new Case(rnd, 1, nq, nk, 2, 16, mask);
    for (CpuFlashAttentionBackward kernel : KERNELS) {
      Grads g = c.run(kernel);
      for (int i = 0; i < 40 * 2 * 16; i++) {
        assertEquals(0f, g.dq.data()[i], kernel.name() + " dq[" + i + "]");
      }
      // keys 60..69 sit at global 100..109: after every query, so no gradient either
      for (int i = 60 * 2 * 16; i < nk * 2 * 16; i++) {
        assertEquals(0f, g.dk.data()[i], kernel.name() + " dk[" + i + "]");
        assertEquals(0f, g.dv.data()[i], kernel.name() + " dv[" + i + "]");
      }
      c.assertMatches(g, kernel.name());
    }
  }

  @Test
  void accumulatesOverKeyBlocks() {
    // A ring's view: dQ summed over key blocks (given the full O and LSE) equals the whole.
    Random rnd = new Random(SEEDS.nextLong());
    int nq = 90;
    int nk = 200;
    AttentionMask mask = new AttentionMask(true, 150, 0, 180);
    Case c = new Case(rnd, 1, nq, nk, 3, 24, mask);
    CpuFlashAttentionBackward kernel = KERNELS.get(1);
    Tensor dq = Tensor.randn(rnd, 1f, nq, 3, 24);
    float[] before = dq.data().clone();
    Tensor dk = Tensor.zeros(nk, 3, 24);
    Tensor dv = Tensor.zeros(nk, 3, 24);
    int[] cuts = {0, 64, 65, 130, nk};
    for (int i = 0; i < cuts.length - 1; i++) {
      int from = cuts[i];
      int len = cuts[i + 1] - from;
      kernel.backward(BlockView.of(c.q), BlockView.of(c.k).rows(from, len),
          BlockView.of(c.v).rows(from, len), BlockView.of(c.out), c.lse, BlockView.of(c.dOut),
          c.scale, mask.at(150, from), BlockView.of(dq), BlockView.of(dk).rows(from, len),
          BlockView.of(dv).rows(from, len), true);
    }
    for (int i = 0; i < before.length; i++) {
      dq.data()[i] -= before[i];
    }
    c.assertMatches(new Grads(dq, dk, dv), "accumulated over key blocks");
  }

  @Test
  void readsAndWritesStridedViewsOfPackedBuffers() {
    // q, k, v (and their gradients) as views into one (seq, 3·E) buffer, as a layer holds them.
    Random rnd = new Random(SEEDS.nextLong());
    int n = 77;
    int heads = 3;
    int d = 16;
    int e = heads * d;
    float[] packed = Tensor.randn(rnd, 1f, n, 3 * e).data();
    BlockView q = packedView(packed, n, heads, d, 0);
    BlockView k = packedView(packed, n, heads, d, e);
    BlockView v = packedView(packed, n, heads, d, 2 * e);
    Tensor out = Tensor.zeros(n, heads, d);
    float[] lse = new float[n * heads];
    float scale = 0.25f;
    forward.forward(q, k, v, scale, AttentionMask.causalMask(), BlockView.of(out), lse);
    Tensor dOut = Tensor.randn(rnd, 1f, n, heads, d);
    float[] expected = new float[n * 3 * e];
    ReferenceAttentionBackward.backward(q, k, v, BlockView.of(dOut), scale,
        AttentionMask.causalMask(), packedView(expected, n, heads, d, 0),
        packedView(expected, n, heads, d, e), packedView(expected, n, heads, d, 2 * e));
    for (CpuFlashAttentionBackward kernel : KERNELS) {
      float[] grads = new float[n * 3 * e];
      Arrays.fill(grads, Float.NaN); // overwritten, not accumulated
      kernel.backward(q, k, v, BlockView.of(out), lse, BlockView.of(dOut), scale,
          AttentionMask.causalMask(), packedView(grads, n, heads, d, 0),
          packedView(grads, n, heads, d, e), packedView(grads, n, heads, d, 2 * e), false);
      Accuracy.assertClose(grads, expected, tolerance(n, n, d, 1), kernel.name());
    }
  }

  @Test
  void rejectsGradientsOfTheWrongShape() {
    BlockView x = BlockView.of(Tensor.zeros(4, 2, 8));
    BlockView wrong = BlockView.of(Tensor.zeros(5, 2, 8));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> KERNELS.get(0).backward(x, x, x, x, new float[8], x, 1f, AttentionMask.NONE, x,
            wrong, x, false));
    assertEquals("dk must be shaped (1, 4, 2, 8), got (1, 5, 2, 8)", e.getMessage());
  }

  @Test
  void stopsWhenCancelled() {
    Random rnd = new Random(SEEDS.nextLong());
    Case c = new Case(rnd, 1, 200, 200, 2, 16, AttentionMask.NONE);
    try (CpuFlashAttentionBackward kernel = new CpuFlashAttentionBackward(2)) {
      kernel.cancelWith(() -> "test says stop");
      assertThrows(CancelledException.class, () -> c.run(kernel));
      kernel.cancelWith(null);
      c.assertMatches(c.run(kernel), "after a cancelled call");
    }
  }

  private static BlockView packedView(float[] data, int n, int heads, int d, int offset) {
    int e = heads * d;
    return new BlockView(data, offset, 1, n, heads, d, 3 * e, (long) n * 3 * e);
  }

  private static void check(int b, int nq, int nk, int h, int d, AttentionMask mask) {
    Case c = new Case(new Random(SEEDS.nextLong()), b, nq, nk, h, d, mask);
    for (CpuFlashAttentionBackward kernel : KERNELS) {
      c.assertMatches(c.run(kernel), kernel.name());
    }
  }

  /**
   * The relative (L2) error bound of a gradient, from fp32's error model (u = 2^-24), for inputs
   * of unit scale. Each gradient element is a sum over up to n keys (or queries) of products that
   * carry their own rounding: a recomputed probability is off by about |score|·u from the score's
   * rounding (S = the largest |score|) plus a few u from the exponential and the LSE; dP is a
   * d-term dot product (√d·u, a random walk); the sums over n terms add √n·u. The forward's O and
   * LSE, inputs here, carry the same kinds of error. {@code dS = P∘(dP − D)} loses a little more
   * where dP ≈ D. Summed with a safety factor of 8, as in {@link Accuracy#scoreError}: this gives
   * 1e-5..3e-5 for the test shapes; the worst measured error is printed after the class (about
   * 0.05 of its bound with the fixed seed).
   */
  static double tolerance(int nq, int nk, int d, double maxAbsScore) {
    return 8 * Accuracy.FP32_U
        * (4 + maxAbsScore + Math.sqrt(d) + Math.sqrt(Math.max(nq, nk)));
  }

  /** One random problem: inputs, the fp32 forward's O and LSE, and the reference gradients. */
  private static final class Case {
    final Tensor q;
    final Tensor k;
    final Tensor v;
    final Tensor dOut;
    final Tensor out;
    final float[] lse;
    final float scale;
    final AttentionMask mask;
    final Grads expected;
    final double tol;

    Case(Random rnd, int b, int nq, int nk, int h, int d, AttentionMask mask) {
      q = Tensor.randn(rnd, 1f, b, nq, h, d);
      k = Tensor.randn(rnd, 1f, b, nk, h, d);
      v = Tensor.randn(rnd, 1f, b, nk, h, d);
      dOut = Tensor.randn(rnd, 1f, b, nq, h, d);
      scale = (float) (1 / Math.sqrt(d));
      this.mask = mask;
      out = Tensor.zeros(b, nq, h, d);
      lse = new float[b * nq * h];
      forward.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(out), lse);
      expected = new Grads(Tensor.zeros(b, nq, h, d), Tensor.zeros(b, nk, h, d),
          Tensor.zeros(b, nk, h, d));
      ReferenceAttentionBackward.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
          BlockView.of(dOut), scale, mask, BlockView.of(expected.dq), BlockView.of(expected.dk),
          BlockView.of(expected.dv));
      tol = tolerance(nq, nk, d,
          Accuracy.maxAbsScore(BlockView.of(q), BlockView.of(k), scale));
    }

    Grads run(CpuFlashAttentionBackward kernel) {
      Grads g = new Grads(Tensor.zeros(q.shape()), Tensor.zeros(k.shape()),
          Tensor.zeros(k.shape()));
      Arrays.fill(g.dq.data(), Float.NaN); // overwritten, not accumulated
      Arrays.fill(g.dk.data(), Float.NaN);
      Arrays.fill(g.dv.data(), Float.NaN);
      kernel.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v), BlockView.of(out), lse,
          BlockView.of(dOut), scale, mask, BlockView.of(g.dq), BlockView.of(g.dk),
          BlockView.of(g.dv), false);
      return g;
    }

    void assertMatches(Grads g, String what) {
      assertGradient(g.dq.data(), expected.dq.data(), what + " dq");
      assertGradient(g.dk.data(), expected.dk.data(), what + " dk");
      assertGradient(g.dv.data(), expected.dv.data(), what + " dv");
    }

    private void assertGradient(float[] actual, float[] want, String what) {
      if (isZero(want)) {
        // Fully masked (exact zeros, tested on their own above) or one visible key per query,
        // where dS = P·(dP − D) is 0 up to the rounding of dP and D: absolute, unit-scale inputs.
        for (float x : actual) {
          assertTrue(Math.abs(x) < tol, what + " should be ~0, got " + x);
        }
        return;
      }
      double err = Accuracy.relativeError(actual, want);
      worst = Math.max(worst, err / tol);
      assertTrue(err < tol, what + ": relative error " + err + " >= " + tol);
    }
  }

  private static boolean isZero(float[] a) {
    for (float x : a) {
      if (x != 0f) {
        return false;
      }
    }
    return true;
  }

  private record Grads(Tensor dq, Tensor dk, Tensor dv) {}
}
