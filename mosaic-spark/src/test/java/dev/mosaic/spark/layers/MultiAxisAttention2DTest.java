package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MultiAxisAttention2DTest {
  private final Random rnd = TestSeed.random();

  /**
   * Reference: copy the two axes into one flattened axis by explicit indexing (axis1 outer), run
   * the naive one-axis attention there, and compare element by element through the same index
   * map.
   */
  @ParameterizedTest(name = "shape 2x5x3x4x16 axes {0},{1} causal={2}")
  @CsvSource({"1,2,false", "2,1,true", "0,3,false", "-2,-4,true", "3,0,false"})
  void equalsOneAxisAttentionOnTheFlattenedSequence(int axis1, int axis2, boolean causal) {
    int[] shape = {2, 5, 3, 4, 16};
    int e = 16;
    Tensor x = Tensor.randn(rnd, 1f, shape);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    Tensor y;
    try (MultiAxisAttention2D layer = new MultiAxisAttention2D(axis1, axis2,
        MultiAxisAttention.builder(e, 4, 0).weights(w).causal(causal).threads(2))) {
      y = layer.forward(x, 9);
    }
    assertArrayEquals(shape, y.shape());
    int a1 = axis1 < 0 ? axis1 + 5 : axis1;
    int a2 = axis2 < 0 ? axis2 + 5 : axis2;
    int[] others = java.util.stream.IntStream.range(0, 4).filter(i -> i != a1 && i != a2)
        .toArray();
    int n1 = shape[a1];
    int n2 = shape[a2];
    // flat tensor: (others0, others1, n1*n2, e)
    Tensor flat = Tensor.zeros(shape[others[0]], shape[others[1]], n1 * n2, e);
    int[] idx = new int[5];
    for (int o0 = 0; o0 < shape[others[0]]; o0++) {
      for (int o1 = 0; o1 < shape[others[1]]; o1++) {
        for (int i = 0; i < n1; i++) {
          for (int j = 0; j < n2; j++) {
            idx[others[0]] = o0;
            idx[others[1]] = o1;
            idx[a1] = i;
            idx[a2] = j;
            for (int c = 0; c < e; c++) {
              idx[4] = c;
              flat.set(x.get(idx), o0, o1, i * n2 + j, c);
            }
          }
        }
      }
    }
    Tensor expected = NaiveMultiAxisAttention.forward(flat, w, 4, 2, causal, 9);
    double num = 0;
    double den = 0;
    for (int o0 = 0; o0 < shape[others[0]]; o0++) {
      for (int o1 = 0; o1 < shape[others[1]]; o1++) {
        for (int i = 0; i < n1; i++) {
          for (int j = 0; j < n2; j++) {
            idx[others[0]] = o0;
            idx[others[1]] = o1;
            idx[a1] = i;
            idx[a2] = j;
            for (int c = 0; c < e; c++) {
              idx[4] = c;
              double d = y.get(idx) - expected.get(o0, o1, i * n2 + j, c);
              num += d * d;
              den += expected.get(o0, o1, i * n2 + j, c) * (double) expected.get(o0, o1,
                  i * n2 + j, c);
            }
          }
        }
      }
    }
    assertTrue(Math.sqrt(num / den) < 1e-5, "relative error " + Math.sqrt(num / den));
  }

  @ParameterizedTest(name = "bad axes {0},{1}")
  @CsvSource({"1,1", "1,3", "-1,0"})
  void badAxesNameTheArgument(int axis1, int axis2) {
    try (MultiAxisAttention2D layer = new MultiAxisAttention2D(8, 2, axis1, axis2)) {
      String msg = assertThrows(IllegalArgumentException.class,
          () -> layer.forward(Tensor.zeros(2, 3, 8))).getMessage();
      if (axis1 == axis2) {
        assertEquals("axis1 and axis2 are the same axis (1, 1)", msg);
      } else if (axis2 == 3) {
        assertEquals("axis2 3 is out of range for an input of rank 3: expected -3..1 excluding"
            + " the embed axis (2 or -1)", msg);
      } else {
        assertEquals("axis1 -1 is out of range for an input of rank 3: expected -3..1 excluding"
            + " the embed axis (2 or -1)", msg);
      }
    }
  }
}
