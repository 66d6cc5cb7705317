package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.ScalarFlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU kernel asks its {@link Cancellation} before every key tile: a cancellation that trips
 * after k questions stops the call after at most one more question per thread (no timing
 * involved), the exception comes out of {@code forward} as it was thrown, and the same kernel then
 * computes correct results again.
 */
class CpuFlashAttentionCancellationTest {
  private static final double TOL = 1e-5;
  private static final long SEED = 20240611L;

  /** Says "stop" from question {@code after + 1} on; counts every question. */
  private static final class TripAfter implements Cancellation {
    final AtomicInteger asked = new AtomicInteger();
    private final int after;

    TripAfter(int after) {
      this.after = after;
    }

    @Override
    public String reason() {
      return asked.incrementAndGet() > after ? "stage 3 was cancelled" : null;
    }
  }

  static Stream<Arguments> kernelsAndShapes() {
    FlashOps simd = VectorizationProvider.ops();
    FlashOps scalar = new ScalarFlashOps();
    // batch, seqQ, seqK, heads, headDim: few (batch, head) pairs, so query tiles are spread over
    // the threads; and many pairs, so whole heads are.
    int[][] shapes = {{1, 207, 1037, 3, 24}, {2, 130, 301, 4, 40}};
    Stream.Builder<Arguments> out = Stream.builder();
    for (int threads : new int[] {1, 2}) {
      for (FlashOps ops : new FlashOps[] {simd, scalar}) {
        for (int[] s : shapes) {
          for (boolean causal : new boolean[] {false, true}) {
            out.add(Arguments.of(threads, ops, s[0], s[1], s[2], s[3], s[4], causal));
          }
        }
      }
    }
    return out.build();
  }

  @ParameterizedTest(name = "threads={0} {1} b={2} nq={3} nk={4} h={5} d={6} causal={7}")
  @MethodSource("kernelsAndShapes")
  void stopsEarlyThenComputesCorrectlyAgain(int threads, FlashOps ops, int b, int nq, int nk,
      int h, int d, boolean causal) {
    Random rnd = new Random(SEED);
    Tensor q = Tensor.randn(rnd, 1f, b, nq, h, d);
    Tensor k = Tensor.randn(rnd, 1f, b, nk, h, d);
    Tensor v = Tensor.randn(rnd, 1f, b, nk, h, d);
    AttentionMask mask = causal ? AttentionMask.causalMask() : AttentionMask.NONE;
    float scale = (float) (1 / Math.sqrt(d));
    Tensor expected = Tensor.zeros(b, nq, h, d);
    float[] lseRef = new float[b * nq * h];
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        mask, BlockView.of(expected), lseRef);

    try (CpuFlashAttention kernel = new CpuFlashAttention(threads, ops)) {
      // How many questions a whole call asks: one per visible key tile.
      TripAfter never = new TripAfter(Integer.MAX_VALUE);
      kernel.cancelWith(never);
      forward(kernel, q, k, v, scale, mask);
      int tiles = never.asked.get();
      assertTrue(tiles > 20, "only " + tiles + " key tiles");

      TripAfter trip = new TripAfter(5);
      kernel.cancelWith(trip);
      CancelledException e = assertThrows(CancelledException.class,
          () -> forward(kernel, q, k, v, scale, mask));
      assertEquals("cancelled: stage 3 was cancelled", e.getMessage());
      int asked = trip.asked.get();
      assertTrue(asked <= 5 + threads, "asked " + asked + " times after tripping at 6, "
          + threads + " threads");
      assertTrue(asked < tiles, "asked " + asked + " of " + tiles);

      kernel.cancelWith(Cancellation.NEVER);
      float[] lse = new float[b * nq * h];
      Tensor out = forward(kernel, q, k, v, scale, mask, lse);
      Accuracy.assertClose(out.data(), expected.data(), TOL, kernel.name() + " after cancel");
      Accuracy.assertClose(lse, lseRef, TOL, kernel.name() + " lse after cancel");
    }
  }

  @ParameterizedTest(name = "threads={0} {1}")
  @MethodSource("kernels")
  void neverChangesNothing(int threads, FlashOps ops) {
    Random rnd = new Random(SEED);
    Tensor q = Tensor.randn(rnd, 1f, 1, 150, 2, 32);
    Tensor k = Tensor.randn(rnd, 1f, 1, 170, 2, 32);
    Tensor v = Tensor.randn(rnd, 1f, 1, 170, 2, 32);
    try (CpuFlashAttention plain = new CpuFlashAttention(threads, ops);
        CpuFlashAttention withNever = new CpuFlashAttention(threads, ops)) {
      withNever.cancelWith(Cancellation.NEVER);
      float[] lse1 = new float[300];
      float[] lse2 = new float[300];
      assertArrayEquals(
          forward(plain, q, k, v, 0.2f, AttentionMask.causalMask(), lse1).data(),
          forward(withNever, q, k, v, 0.2f, AttentionMask.causalMask(), lse2).data());
      assertArrayEquals(lse1, lse2);
    }
  }

  static Stream<Arguments> kernels() {
    return Stream.of(Arguments.of(1, VectorizationProvider.ops()),
        Arguments.of(2, VectorizationProvider.ops()), Arguments.of(1, new ScalarFlashOps()),
        Arguments.of(2, new ScalarFlashOps()));
  }

  private static Tensor forward(AttentionKernel kernel, Tensor q, Tensor k, Tensor v, float scale,
      AttentionMask mask) {
    int[] s = q.shape();
    return forward(kernel, q, k, v, scale, mask, new float[s[0] * s[1] * s[2]]);
  }

  private static Tensor forward(AttentionKernel kernel, Tensor q, Tensor k, Tensor v, float scale,
      AttentionMask mask, float[] lse) {
    Tensor out = Tensor.zeros(q.shape());
    kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
        BlockView.of(out), lse);
    return out;
  }
}
