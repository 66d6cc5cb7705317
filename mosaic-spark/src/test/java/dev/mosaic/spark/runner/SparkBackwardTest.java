package dev.mosaic.spark.runner;

import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Ring and Ulysses backward over real Spark barrier stages in local[4], against the reference. */
@Timeout(600) // generous: starting the shared session on a loaded machine took over 180 s
class SparkBackwardTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        // backend, layout, causal, keyLimit
        Arguments.of(Backends.RING, ShardLayout.zigzag(97, 2), true, Long.MAX_VALUE),
        Arguments.of(Backends.RING, ShardLayout.contiguous(new int[] {40, 7, 29}), false, 50L),
        Arguments.of(Backends.RING, ShardLayout.zigzag(130, 4), true, 101L),
        Arguments.of(Backends.ULYSSES, ShardLayout.zigzag(83, 2), true, Long.MAX_VALUE),
        Arguments.of(Backends.ULYSSES, ShardLayout.contiguous(new int[] {0, 33, 9, 20}), false,
            41L));
  }

  @ParameterizedTest(name = "{0} {1} causal={2} keyLimit={3}")
  @MethodSource("cases")
  void gradientsOverBarrierTasksEqualTheReference(String backend, ShardLayout layout,
      boolean causal, long keyLimit) {
    BackwardExpectation.check(MosaicContext.init(TestSpark.get(), layout.parts()), rnd, backend,
        layout, causal, keyLimit);
  }
}
