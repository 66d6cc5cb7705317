package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The cross-attention layer's contract beyond the PyTorch fixtures: bad shapes, no keys. */
class CrossAxisAttentionTest {
  private final Random rnd = TestSeed.random();

  private CrossAxisAttention layer(int axis) {
    return new CrossAxisAttention(MultiAxisAttention.builder(8, 2, axis).seed(3).threads(1));
  }

  @Test
  void otherAxesMustMatchInOneLine() {
    try (CrossAxisAttention l = layer(1)) {
      String msg = assertThrows(IllegalArgumentException.class, () -> l.forward(
          Tensor.zeros(2, 5, 3, 8), Tensor.zeros(2, 7, 4, 8))).getMessage();
      assertEquals("kv has shape [2, 7, 4, 8] but x has [2, 5, 3, 8]: expected equal sizes on"
          + " every axis except the attention axis 1 (axis 2 differs)", msg);
    }
  }

  @Test
  void rankAndEmbedMustMatch() {
    try (CrossAxisAttention l = layer(0)) {
      assertEquals("kv must have x's rank 3 and embedDim 8 last, got Tensor[4, 8] (x"
          + " Tensor[5, 3, 8])", assertThrows(IllegalArgumentException.class,
              () -> l.forward(Tensor.zeros(5, 3, 8), Tensor.zeros(4, 8))).getMessage());
      assertEquals("kv must have x's rank 3 and embedDim 8 last, got Tensor[4, 3, 6] (x"
          + " Tensor[5, 3, 8])", assertThrows(IllegalArgumentException.class,
              () -> l.forward(Tensor.zeros(5, 3, 8), Tensor.zeros(4, 3, 6))).getMessage());
    }
  }

  @Test
  void theAxisMustNotBeEmbed() {
    try (CrossAxisAttention l = layer(2)) {
      String msg = assertThrows(IllegalArgumentException.class,
          () -> l.forward(Tensor.zeros(5, 3, 8), Tensor.zeros(5, 3, 8))).getMessage();
      assertEquals("attentionAxis 2 is out of range for an input of rank 3: expected -3..1"
          + " excluding the embed axis (2 or -1)", msg);
    }
  }

  /** No key positions: attention output 0, so y is out_proj.bias everywhere (never NaN). */
  @Test
  void noKeysGiveTheOutputBias() {
    AttentionWeights w = AttentionWeights.random(8, 5);
    Tensor bias = Tensor.randn(rnd, 1f, 8);
    w = new AttentionWeights(w.inProjWeight(), w.inProjBias(), w.outProjWeight(), bias);
    try (CrossAxisAttention l = new CrossAxisAttention(
        MultiAxisAttention.builder(8, 2, 0).weights(w).threads(1))) {
      Tensor y = l.forward(Tensor.randn(rnd, 1f, 4, 3, 8), Tensor.zeros(0, 3, 8));
      assertArrayEquals(new int[] {4, 3, 8}, y.shape());
      for (int row = 0; row < 12; row++) {
        assertArrayEquals(bias.data(),
            java.util.Arrays.copyOfRange(y.data(), row * 8, row * 8 + 8), "row " + row);
      }
    }
  }
}
