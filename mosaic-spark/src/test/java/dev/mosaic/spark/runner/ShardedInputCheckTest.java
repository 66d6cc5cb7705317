package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The driver-side input checks, as a library caller of ShardedAttention meets them. */
class ShardedInputCheckTest {
  private final Random rnd = new Random(11);

  private static String error(Runnable r) {
    return assertThrows(IllegalArgumentException.class, r::run).getMessage();
  }

  @Test
  void everyTaskNeedsAPosition() {
    Tensor x = Tensor.randn(rnd, 1f, 2, 3, 8);
    assertEquals("spSize 4 needs at least 4 positions along axis 1, which has 3",
        error(() -> ShardedInputCheck.check(x, 1, 4)));
    assertEquals("spSize 4 needs at least 4 positions along axis 1, which has 3",
        error(() -> ShardedInputCheck.check(x, -2, 4)));
    ShardedInputCheck.check(x, 1, 3);
    ShardedInputCheck.check(x, 0, 2);
    ShardedInputCheck.requireShardable(5, "axis 0", 5, "--sp 5");
  }

  @Test
  void emptyAxesAreNamed() {
    assertEquals("tensor 'x' has shape [2, 0, 8]: attention axis 1 is empty: nothing to attend"
        + " over", error(() -> ShardedInputCheck.check(Tensor.zeros(2, 0, 8), 1, 1)));
    assertEquals("tensor 'x' has shape [2, 3, 0]: the embedding (last axis) is empty",
        error(() -> ShardedInputCheck.check(Tensor.zeros(2, 3, 0), 1, 1)));
    assertEquals("tensor 'x' has shape [0, 3, 8]: axis 0 is empty",
        error(() -> ShardedInputCheck.check(Tensor.zeros(0, 3, 8), 1, 1)));
  }

  @Test
  void nonFiniteValuesAreCountedAndTheFirstLocated() {
    Tensor x = Tensor.randn(rnd, 1f, 2, 3, 4);
    ShardedInputCheck.requireFinite("x", x);
    x.set(Float.NEGATIVE_INFINITY, 1, 0, 3);
    assertEquals("tensor 'x' has 1 non-finite value (first -Inf at [1, 0, 3])",
        error(() -> ShardedInputCheck.check(x, 1, 2)));
    x.set(Float.NaN, 0, 2, 1);
    x.set(Float.POSITIVE_INFINITY, 1, 2, 3);
    assertEquals("tensor 'x' has 3 non-finite values (first NaN at [0, 2, 1])",
        error(() -> ShardedInputCheck.requireFinite("x", x)));
    Map<String, Tensor> weights = new LinkedHashMap<>();
    weights.put("in_proj_weight", Tensor.randn(rnd, 1f, 12, 4));
    Tensor bias = Tensor.zeros(12);
    bias.set(Float.POSITIVE_INFINITY, 11);
    weights.put("in_proj_bias", bias);
    assertEquals("tensor 'in_proj_bias' has 1 non-finite value (first +Inf at [11])",
        error(() -> ShardedInputCheck.requireFinite(weights)));
  }

  @Test
  void flatIndexToShape() {
    assertArrayEquals(new int[] {1, 2, 3}, ShardedInputCheck.index(1 * 12 + 2 * 4 + 3,
        new int[] {2, 3, 4}));
    assertArrayEquals(new int[] {0}, ShardedInputCheck.index(0, new int[] {5}));
  }
}
