package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.ReferenceAttentionBackward;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.test.TestSeed;
import java.util.Random;

/**
 * Runs {@link ShardedBackward} over a Spark stage and compares O, dQ, dK and dV with the
 * double-precision reference backward of the whole sequence. Tolerance: each element is an fp32
 * sum of at most n ≤ 160 O(1) products, split over blocks differently than in the reference
 * (error ≲ n·ε·Σ|terms|, a few 1e-5 at worst, far less in norm); 1e-4 in norm still catches a
 * missed block, which costs an O(1/p) share.
 */
final class BackwardExpectation {
  private static final double TOLERANCE = 1e-4;

  private BackwardExpectation() {}

  static void check(MosaicContext ctx, Random rnd, String backend, ShardLayout layout,
      boolean causal, long keyLimit) {
    int batch = 2;
    int heads = 4;
    int d = 16;
    int n = (int) layout.total();
    float scale = 0.25f;
    Tensor[] in = new Tensor[4];
    for (int i = 0; i < 4; i++) {
      in[i] = Tensor.randn(rnd, 1f, batch, n, heads, d);
    }
    AttentionMask mask = new AttentionMask(causal, 0, 0, keyLimit);
    Tensor[] expected = new Tensor[4];
    for (int i = 0; i < 4; i++) {
      expected[i] = Tensor.zeros(batch, n, heads, d);
    }
    new ReferenceAttention().forward(BlockView.of(in[0]), BlockView.of(in[1]),
        BlockView.of(in[2]), scale, mask, BlockView.of(expected[0]), new float[batch * n * heads]);
    ReferenceAttentionBackward.backward(BlockView.of(in[0]), BlockView.of(in[1]),
        BlockView.of(in[2]), BlockView.of(in[3]), scale, mask, BlockView.of(expected[1]),
        BlockView.of(expected[2]), BlockView.of(expected[3]));
    Tensor[] actual = ShardedBackward.run(ctx, StrategySpec.of(backend), layout, in, scale,
        new ShardedBackward.Mask(causal, keyLimit));
    String[] names = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
      double err = RelativeError.of(actual[i], expected[i]);
      assertTrue(err < TOLERANCE, backend + " over " + layout + ": " + names[i]
          + " relative error " + err + "; " + TestSeed.replayHint());
    }
  }
}
