package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.ReferenceAttentionBackward;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The backward seam of {@link Strategy}: the local strategy against the reference backward. */
class LocalStrategyBackwardTest {

  @Test
  void localBackwardEqualsTheReference() {
    Random rnd = new Random(TestSeed.mix(TestSeed.get(), 71));
    int n = 37;
    int heads = 3;
    int d = 5;
    Tensor q = Tensor.randn(rnd, 1f, 2, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, 2, n, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, 2, n, heads, d);
    Tensor dOut = Tensor.randn(rnd, 1f, 2, n, heads, d);
    float scale = 0.4f;
    for (AttentionMask mask : new AttentionMask[] {AttentionMask.NONE,
        AttentionMask.causalMask()}) {
      Tensor out = Tensor.zeros(2, n, heads, d);
      float[] lse = new float[2 * n * heads];
      Tensor[] grads = {Tensor.zeros(2, n, heads, d), Tensor.zeros(2, n, heads, d),
          Tensor.zeros(2, n, heads, d)};
      Tensor[] expected = {Tensor.zeros(2, n, heads, d), Tensor.zeros(2, n, heads, d),
          Tensor.zeros(2, n, heads, d)};
      try (Strategy local = new LocalStrategy(new CpuFlashAttention(2), true)) {
        local.attend(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
            BlockView.of(out), lse);
        local.attendBackward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
            BlockView.of(out), lse, BlockView.of(dOut), scale, mask, BlockView.of(grads[0]),
            BlockView.of(grads[1]), BlockView.of(grads[2]));
      }
      ReferenceAttentionBackward.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
          BlockView.of(dOut), scale, mask, BlockView.of(expected[0]), BlockView.of(expected[1]),
          BlockView.of(expected[2]));
      for (int g = 0; g < 3; g++) {
        float[] a = grads[g].data();
        float[] b = expected[g].data();
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
          // fp32 sums over n = 37 terms of O(1): error ~ n·eps·|terms|, far under 1e-4.
          worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
        }
        assertTrue(worst < 1e-4, "gradient " + "qkv".charAt(g) + " off by " + worst + " with "
            + mask + "; " + TestSeed.replayHint());
      }
    }
  }

  @Test
  void strategiesWithoutABackwardSayWhichHaveOne() {
    Strategy none = new Strategy() {
      @Override
      public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
          BlockView out) {}

      @Override
      public String name() {
        return "mesh2d(2x2)";
      }
    };
    BlockView x = BlockView.of(Tensor.zeros(1, 1, 1, 1));
    UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
        () -> none.attend(x, x, x, 1f, AttentionMask.NONE, x, new float[1]));
    assertEquals("strategy mesh2d(2x2) has no backward pass; backends with one: local, ring, ulysses",
        e.getMessage());
  }
}
