package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Keys/values computed once and attended to later ({@code keyValues} + {@code attend}) against
 * {@code forward} with a key limit. Both run the same kernel on the same projections, so they
 * differ only by fp32 summation order: a few ulps of the O(1) outputs, far below 1e-5.
 */
class MultiAxisAttentionCachedKeysTest {
  private static final double TOL = 1e-5;
  private final Random rnd = TestSeed.random();

  @ParameterizedTest(name = "shape {0} heads {1} axis {2} keys {3}")
  @CsvSource({"23x5x16, 2, 0, 15", "23x5x16, 4, 0, 1", "4x31x24, 3, 1, 20", "31x32, 4, 0, 31",
      "2x3x19x8, 1, -2, 7"})
  void cachedKeysGiveWhatForwardWithAKeyLimitGives(String dims, int heads, int axis, int keys) {
    int[] shape = Arrays.stream(dims.split("x")).mapToInt(Integer::parseInt).toArray();
    Tensor x = Tensor.randn(rnd, 1f, shape);
    int ax = MultiAxisAttention.checkAxis(axis, shape.length, "axis");
    int seq = shape[ax];
    try (MultiAxisAttention layer = MultiAxisAttention.builder(shape[shape.length - 1], heads, axis)
        .seed(rnd.nextLong()).threads(2).build()) {
      Tensor expected = layer.forward(x, keys);
      KeyValues kv = layer.keyValues(along(x, ax, 0, keys));
      assertEquals(keys, kv.seq());

      assertClose(layer.attend(x, kv), expected, "all positions as queries");
      assertClose(layer.attend(along(x, ax, keys, seq - keys), kv),
          along(expected, ax, keys, seq - keys), "only the positions past the keys");

      int cut = keys / 3;
      KeyValues a = kv.slice(0, cut);
      KeyValues b = kv.slice(cut, keys - cut);
      assertClose(layer.attend(x, a, b), expected, "keys in two parts, LSE-merged");
      assertClose(layer.attend(x, b, a), expected, "the parts in the other order");
      assertClose(layer.attend(x, KeyValues.concat(List.of(a, b))), expected, "parts rejoined");
      assertEquals(Arrays.toString(kv.data()),
          Arrays.toString(KeyValues.concat(List.of(a, b)).data()));
    }
  }

  @Test
  void mismatchedKeysAreOneLineErrors() {
    Tensor x = Tensor.randn(rnd, 1f, 10, 3, 8);
    try (MultiAxisAttention layer = MultiAxisAttention.builder(8, 2, 0).threads(1).build();
        MultiAxisAttention wide = MultiAxisAttention.builder(16, 2, 0).threads(1).build();
        MultiAxisAttention causal =
            MultiAxisAttention.builder(8, 2, 0).causal(true).threads(1).build()) {
      KeyValues kv = layer.keyValues(x);
      assertEquals("queries have batch 4 (the input's other axes), keys have 3: expected the same",
          assertThrows(IllegalArgumentException.class,
              () -> layer.attend(Tensor.randn(rnd, 1f, 10, 4, 8), kv)).getMessage());
      assertEquals("keys have embedDim 8, expected the layer's 16",
          assertThrows(IllegalArgumentException.class,
              () -> wide.attend(Tensor.randn(rnd, 1f, 10, 3, 16), kv)).getMessage());
      assertEquals("attending to cached keys needs a non-causal layer; this one is causal",
          assertThrows(IllegalStateException.class, () -> causal.attend(x, kv)).getMessage());
      assertEquals("parts is empty: expected at least one key/value part",
          assertThrows(IllegalArgumentException.class, () -> layer.attend(x)).getMessage());
    }
  }

  /** Positions {@code [from, from + count)} of {@code t} along {@code axis}. */
  static Tensor along(Tensor t, int axis, int from, int count) {
    Tensor front = t.moveAxis(axis, 0);
    int inner = front.size() / front.dim(0);
    int[] shape = front.shape().clone();
    shape[0] = count;
    float[] data = Arrays.copyOfRange(front.data(), from * inner, (from + count) * inner);
    return Tensor.of(data, shape).moveAxis(0, axis);
  }

  private static void assertClose(Tensor actual, Tensor expected, String what) {
    assertEquals(Arrays.toString(expected.shape()), Arrays.toString(actual.shape()), what);
    double err = RelativeError.of(actual, expected);
    assertTrue(err < TOL, what + ": relative error " + err);
  }
}
