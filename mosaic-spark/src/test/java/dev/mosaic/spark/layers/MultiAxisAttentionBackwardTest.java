package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.Strategy;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The layer backward's contract around the numbers: same forward, bad input, no backward. */
class MultiAxisAttentionBackwardTest {
  private final Random rnd = new Random(TestSeed.mix(TestSeed.get(), 313));

  @Test
  void forwardForBackwardGivesForwardsOutputBitForBit() {
    Tensor x = Tensor.randn(rnd, 1f, 3, 7, 5, 12);
    for (int axis : new int[] {0, 1, -2}) {
      for (boolean causal : new boolean[] {false, true}) {
        try (MultiAxisAttention layer = MultiAxisAttention.builder(12, 3, axis).seed(axis)
            .causal(causal).threads(2).build()) {
          assertArrayEquals(layer.forward(x, 4).data(),
              layer.forwardForBackward(x, 4).output().data(), "axis " + axis + " " + causal);
        }
      }
    }
    try (MultiAxisAttention2D layer = new MultiAxisAttention2D(1, 0,
        MultiAxisAttention.builder(12, 2, 0).threads(2))) {
      assertArrayEquals(layer.forward(x).data(),
          layer.forwardForBackward(x, Long.MAX_VALUE).output().data());
    }
  }

  @Test
  void badGradientsAndMissingActivationsAreOneLineErrors() {
    Tensor x = Tensor.randn(rnd, 1f, 4, 6, 8);
    try (MultiAxisAttention layer = MultiAxisAttention.builder(8, 2, 1).threads(1).build()) {
      AttentionActivations saved = layer.forwardForBackward(x, Long.MAX_VALUE);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> layer.backward(saved, Tensor.zeros(4, 6, 4)));
      assertEquals("dy must have y's shape [4, 6, 8], got [4, 6, 4]", e.getMessage());
      AttentionActivations bare = new AttentionActivations(saved.output(), 1, null, null, null,
          null, saved.mask());
      e = assertThrows(IllegalArgumentException.class,
          () -> layer.backward(bare, Tensor.zeros(4, 6, 8)));
      assertEquals("saved activations are missing: run forwardForBackward, not forward, before"
          + " backward", e.getMessage());
    }
    try (MultiAxisAttention2D layer = new MultiAxisAttention2D(0, 1,
        MultiAxisAttention.builder(8, 2, 0).threads(1))) {
      MultiAxisAttention2D.Activations saved = layer.forwardForBackward(x, Long.MAX_VALUE);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> layer.backward(saved, Tensor.zeros(6, 4, 8)));
      assertEquals("dy must have y's shape [4, 6, 8], got [6, 4, 8]", e.getMessage());
    }
  }

  @Test
  void aStrategyWithoutABackwardRefusesTheSavingForward() {
    Strategy forwardOnly = new Strategy() {
      @Override
      public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
          BlockView out) {}

      @Override
      public String name() {
        return "forward-only";
      }
    };
    try (MultiAxisAttention layer = MultiAxisAttention.builder(8, 2, 0).strategy(forwardOnly)
        .threads(1).build()) {
      UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
          () -> layer.forwardForBackward(Tensor.randn(rnd, 1f, 5, 8), Long.MAX_VALUE));
      assertEquals("strategy forward-only has no backward pass; backends with one: "
          + String.join(", ", dev.mosaic.spark.strategy.BackwardSupport.BACKENDS),
          e.getMessage());
    }
  }
}
