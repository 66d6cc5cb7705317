package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Ring over real Spark barrier stages in local[4] equals the local layer. */
@Timeout(180)
class SparkRingTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        // shape, heads, axis, causal, keyLimit, shards
        Arguments.of(new int[] {2, 64, 16}, 2, 1, false, Long.MAX_VALUE, 2),
        Arguments.of(new int[] {2, 101, 16}, 4, -2, false, Long.MAX_VALUE, 4),
        Arguments.of(new int[] {97, 3, 24}, 3, 0, true, Long.MAX_VALUE, 3),
        Arguments.of(new int[] {2, 83, 16}, 2, 1, true, 40, 4),
        Arguments.of(new int[] {2, 75, 3, 16}, 2, 1, false, 30, 3),
        Arguments.of(new int[] {3, 4, 58, 32}, 4, 2, true, Long.MAX_VALUE, 2),
        Arguments.of(new int[] {41, 2, 3, 8}, 1, -4, false, Long.MAX_VALUE, 4));
  }

  @ParameterizedTest(name = "{0} heads={1} axis={2} causal={3} keyLimit={4} sp={5}")
  @MethodSource("cases")
  void ringOverBarrierTasksEqualsLocal(int[] shape, int heads, int axis, boolean causal,
      long keyLimit, int sp) {
    int e = shape[shape.length - 1];
    Tensor x = Tensor.randn(rnd, 1f, shape);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    Tensor expected;
    try (MultiAxisAttention local = MultiAxisAttention.builder(e, heads, axis).weights(w)
        .causal(causal).threads(2).build()) {
      expected = local.forward(x, keyLimit);
    }
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), sp);
    Tensor actual = ShardedAttention.run(ctx, x,
        new ShardedAttention.Spec(heads, axis, causal, keyLimit, w, "ring"));
    assertArrayEquals(x.shape(), actual.shape());
    double err = RelativeError.of(actual, expected);
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void tooManyShardsFailsFastNamingTheSettings() {
    long t0 = System.nanoTime();
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> MosaicContext.init(TestSpark.get(), 9));
    assertTrue((System.nanoTime() - t0) / 1e9 < 10, "slot check must not wait for Spark's retries");
    assertEquals("Mosaic needs 9 barrier tasks running at once, but master local[4,2] offers 4"
        + " task slot(s). Settings now: spark.task.cpus=1. Fix: use fewer shards (--sp 4), or give"
        + " the cluster more slots: --master local[9] or more", e.getMessage());
  }

  @Test
  void badSettingsFailOnTheDriverNamingTheKey() {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    assertEquals("spark.mosaic.comm.timeout must be a positive duration such as 30s or 2min, got"
            + " 'soon'",
        assertThrows(IllegalArgumentException.class,
            () -> ctx.with(MosaicConfig.COMM_TIMEOUT, "soon")).getMessage());
  }
}
