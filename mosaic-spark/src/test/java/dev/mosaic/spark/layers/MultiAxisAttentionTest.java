package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class MultiAxisAttentionTest {
  private static final double TOL = 1e-5;
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> everyAxis() {
    Stream.Builder<Arguments> b = Stream.builder();
    int[][] shapes = {{13, 16}, {3, 13, 16}, {2, 5, 7, 24}, {2, 3, 4, 5, 32}};
    int[] heads = {1, 2, 3, 4};
    for (int s = 0; s < shapes.length; s++) {
      int rank = shapes[s].length;
      for (int axis = -rank; axis <= rank - 2; axis++) {
        if (axis == -1) {
          continue;
        }
        b.add(Arguments.of(shapes[s], heads[s], axis));
      }
    }
    return b.build();
  }

  @ParameterizedTest(name = "shape {0} heads {1} axis {2}")
  @MethodSource("everyAxis")
  void matchesNaiveAttentionOnEveryAxis(int[] shape, int heads, int axis) {
    check(shape, heads, axis, false, Long.MAX_VALUE);
    check(shape, heads, axis, true, Long.MAX_VALUE);
  }

  static Stream<Arguments> headShapes() {
    return Stream.of(
        Arguments.of(1, 8), Arguments.of(2, 16), Arguments.of(4, 24), Arguments.of(8, 8),
        Arguments.of(8, 64), Arguments.of(2, 128), Arguments.of(3, 40));
  }

  @ParameterizedTest(name = "heads {0} headDim {1}")
  @MethodSource("headShapes")
  void headsAndHeadDims(int heads, int headDim) {
    check(new int[] {2, 207, heads * headDim}, heads, 1, false, Long.MAX_VALUE);
    check(new int[] {207, 2, heads * headDim}, heads, 0, true, 100);
  }

  @Test
  void longSequence() {
    check(new int[] {1037, 32}, 4, 0, false, Long.MAX_VALUE);
    check(new int[] {1037, 32}, 4, -2, true, Long.MAX_VALUE);
  }

  @Test
  void keyLimitLetsRowsSeeOnlyTheFirstKeys() {
    check(new int[] {2, 50, 3, 16}, 2, 1, false, 17);
    check(new int[] {2, 50, 3, 16}, 2, -3, true, 1);
    // no visible key at all: zeros before the output projection, so the output is out_proj.bias
    check(new int[] {5, 16}, 2, 0, false, 0);
  }

  @Test
  void sequenceOfOne() {
    check(new int[] {4, 1, 8}, 1, 1, true, Long.MAX_VALUE);
  }

  @Test
  void loadsPyTorchNamedWeights() {
    int e = 16;
    AttentionWeights w = randomWeights(e);
    Map<String, Tensor> file = new HashMap<>(w.toMap("encoder.attn."));
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, 4, 0)
        .weights(file, "encoder.attn.").threads(1).build()) {
      Tensor x = Tensor.randn(rnd, 1f, 9, e);
      Tensor y = layer.forward(x);
      Tensor expected = NaiveMultiAxisAttention.forward(x, w, 4, 0, false, Long.MAX_VALUE);
      assertClose(y, expected);
    }
  }

  @Test
  void seededInitialisationIsReproducible() {
    try (MultiAxisAttention a = MultiAxisAttention.builder(8, 2, 0).seed(7).build();
        MultiAxisAttention b = MultiAxisAttention.builder(8, 2, 0).seed(7).build();
        MultiAxisAttention c = MultiAxisAttention.builder(8, 2, 0).seed(8).build()) {
      assertArrayEquals(a.weights().inProjWeight().data(), b.weights().inProjWeight().data());
      org.junit.jupiter.api.Assertions.assertFalse(java.util.Arrays.equals(
          a.weights().inProjWeight().data(), c.weights().inProjWeight().data()));
    }
  }

  @Test
  void errorsNameTheArgument() {
    assertEquals("embedDim 10 is not divisible by numHeads 3 (each head gets embedDim/numHeads"
            + " features)",
        assertThrows(IllegalArgumentException.class,
            () -> new MultiAxisAttention(10, 3, 0, "local")).getMessage());
    assertEquals("unknown backend 'spiral'; expected one of local, ring, mesh2d, ulysses,"
            + " composed, hierarchical, auto",
        assertThrows(IllegalArgumentException.class,
            () -> new MultiAxisAttention(8, 2, 0, "spiral")).getMessage());
    assertEquals("numHeads must be positive, got 0",
        assertThrows(IllegalArgumentException.class,
            () -> new MultiAxisAttention(8, 0, 0, "local")).getMessage());
    try (MultiAxisAttention layer = new MultiAxisAttention(8, 2, 3, "local")) {
      assertEquals("attentionAxis 3 is out of range for an input of rank 3: expected -3..1"
              + " excluding the embed axis (2 or -1)",
          assertThrows(IllegalArgumentException.class,
              () -> layer.forward(Tensor.zeros(2, 3, 8))).getMessage());
    }
    try (MultiAxisAttention layer = new MultiAxisAttention(8, 2, -1, "local")) {
      assertEquals("attentionAxis -1 is out of range for an input of rank 3: expected -3..1"
              + " excluding the embed axis (2 or -1)",
          assertThrows(IllegalArgumentException.class,
              () -> layer.forward(Tensor.zeros(2, 3, 8))).getMessage());
    }
    try (MultiAxisAttention layer = new MultiAxisAttention(8, 2, 0, "local")) {
      assertEquals("input's last dimension is 7, expected embedDim 8 (input Tensor[2, 3, 7])",
          assertThrows(IllegalArgumentException.class,
              () -> layer.forward(Tensor.zeros(2, 3, 7))).getMessage());
      assertEquals("input must have rank >= 2 (an attention axis and embed last), got Tensor[8]",
          assertThrows(IllegalArgumentException.class,
              () -> layer.forward(Tensor.zeros(8))).getMessage());
    }
    Map<String, Tensor> missing = new HashMap<>(randomWeights(8).toMap(""));
    missing.remove("out_proj.bias");
    assertEquals("weight 'out_proj.bias' is missing; the weights hold "
            + missing.keySet(),
        assertThrows(IllegalArgumentException.class,
            () -> MultiAxisAttention.builder(8, 2, 0).weights(missing, "")).getMessage());
    Map<String, Tensor> misshaped = new HashMap<>(randomWeights(8).toMap(""));
    misshaped.put("in_proj_weight", Tensor.zeros(24, 7));
    assertEquals("weight 'in_proj_weight' has shape [24, 7], expected [24, 8]",
        assertThrows(IllegalArgumentException.class,
            () -> MultiAxisAttention.builder(8, 2, 0).weights(misshaped, "")).getMessage());
    assertEquals("backend 'ring' shards the sequence over Spark tasks: run it through the Spark"
            + " runner (CLI: --sp P), or use backend 'local' in a single JVM",
        assertThrows(IllegalArgumentException.class,
            () -> new MultiAxisAttention(8, 2, 0, "ring")).getMessage());
  }

  private AttentionWeights randomWeights(int e) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e), Tensor.randn(rnd, 0.1f, 3 * e),
        Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
  }

  private void check(int[] shape, int heads, int axis, boolean causal, long keyLimit) {
    int e = shape[shape.length - 1];
    AttentionWeights w = randomWeights(e);
    Tensor x = Tensor.randn(rnd, 1f, shape);
    Tensor before = x.copy();
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, heads, axis).weights(w)
        .causal(causal).threads(2).build()) {
      Tensor y = layer.forward(x, keyLimit);
      assertArrayEquals(shape, y.shape());
      assertArrayEquals(before.data(), x.data(), "input must not change");
      assertClose(y, NaiveMultiAxisAttention.forward(x, w, heads, axis, causal, keyLimit));
    }
  }

  private static void assertClose(Tensor actual, Tensor expected) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < actual.size(); i++) {
      double d = actual.data()[i] - expected.data()[i];
      num += d * d;
      den += (double) expected.data()[i] * expected.data()[i];
    }
    double err = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
    if (!(err < TOL)) {
      throw new AssertionError("relative error " + err + " >= " + TOL);
    }
  }
}
