package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every strategy over real Spark barrier stages in local[4] equals the local layer. */
@Timeout(180)
class SparkStrategiesTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(StrategySpec.of(Backends.MESH2D).withMesh(2, 2), 4, false),
        Arguments.of(StrategySpec.of(Backends.MESH2D), 4, true),
        Arguments.of(StrategySpec.of(Backends.ULYSSES), 2, true),
        Arguments.of(StrategySpec.of(Backends.COMPOSED).withMesh(2, 2), 4, true),
        Arguments.of(StrategySpec.of(Backends.HIERARCHICAL)
            .withNodes(2, Backends.RING, Backends.RING), 4, true),
        Arguments.of(StrategySpec.of(Backends.HIERARCHICAL)
            .withNodes(2, Backends.ULYSSES, Backends.RING), 4, false),
        // node size from the executor hosts: local mode is one host, so one node of 4
        Arguments.of(StrategySpec.of(Backends.HIERARCHICAL), 4, false),
        Arguments.of(StrategySpec.of(Backends.AUTO), 4, true));
  }

  @ParameterizedTest(name = "{0} sp={1} causal={2}")
  @MethodSource("cases")
  void equalsLocal(StrategySpec strategy, int sp, boolean causal) {
    int e = 32;
    int heads = 4;
    Tensor x = Tensor.randn(rnd, 1f, 2, 67, e);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    long keyLimit = causal ? Long.MAX_VALUE : 50;
    Tensor expected;
    try (MultiAxisAttention local = MultiAxisAttention.builder(e, heads, 1).weights(w)
        .causal(causal).threads(2).build()) {
      expected = local.forward(x, keyLimit);
    }
    Tensor actual = ShardedAttention.run(MosaicContext.init(TestSpark.get(), sp), x,
        new ShardedAttention.Spec(heads, 1, causal, keyLimit, w, strategy));
    double err = RelativeError.of(actual, expected);
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void badShapesFailOnTheDriver() {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 4);
    int e = 24;
    AttentionWeights w = AttentionWeights.random(e, 1);
    Tensor x = Tensor.zeros(10, e);
    assertEquals("ulysses needs the head count (6) to be divisible by the number of ranks (4);"
            + " use 1, 2, 3 or 6 ranks, or another backend",
        assertThrows(IllegalArgumentException.class, () -> ShardedAttention.run(ctx, x,
            new ShardedAttention.Spec(6, 0, false, Long.MAX_VALUE, w, "ulysses"))).getMessage());
    assertEquals("mesh2d grid 3x2 does not cover 4 ranks: rows·cols must equal the number of"
            + " ranks",
        assertThrows(IllegalArgumentException.class, () -> ShardedAttention.run(ctx, x,
            new ShardedAttention.Spec(6, 0, false, Long.MAX_VALUE, w,
                StrategySpec.of("mesh2d").withMesh(3, 2)))).getMessage());
    assertEquals("hierarchical supports intra/inter = ring/ring, ulysses/ring or ulysses/mesh2d,"
            + " not mesh2d/ring",
        assertThrows(IllegalArgumentException.class, () -> ShardedAttention.run(ctx, x,
            new ShardedAttention.Spec(6, 0, false, Long.MAX_VALUE, w,
                StrategySpec.of("hierarchical").withNodes(2, "mesh2d", "ring")))).getMessage());
  }
}
