package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Ring over ranks-as-threads with real TCP communicators, against the double reference. */
@Timeout(120)
class RingStrategyTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    AttentionMask none = AttentionMask.NONE;
    AttentionMask causal = AttentionMask.causalMask();
    return Stream.of(
        Arguments.of(1, ShardLayout.contiguous(40, 1), none),
        Arguments.of(2, ShardLayout.contiguous(103, 2), none),
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 70, 28}), none),
        Arguments.of(4, ShardLayout.contiguous(130, 4), AttentionMask.keyLimit(77)),
        Arguments.of(2, ShardLayout.zigzag(101, 2), causal),
        Arguments.of(4, ShardLayout.zigzag(203, 4), causal),
        Arguments.of(3, ShardLayout.contiguous(new int[] {50, 0, 47}), causal),
        Arguments.of(3, ShardLayout.zigzag(90, 3), new AttentionMask(true, 0, 0, 41)),
        Arguments.of(2, ShardLayout.contiguous(64, 2), AttentionMask.keyLimit(0)));
  }

  @ParameterizedTest(name = "p={0} {1} {2}")
  @MethodSource("cases")
  void ringEqualsFullAttention(int p, ShardLayout layout, AttentionMask mask) throws Exception {
    float scale = 0.25f;
    ShardedProblem problem = ShardedProblem.random(rnd, layout, 2, 3, 16, scale, mask);
    ThreadRanks.run(p, comm -> {
      int r = comm.rank();
      Tensor out = problem.output(r);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        new RingStrategy(comm, layout, kernel).attend(problem.q(r), problem.k(r), problem.v(r),
            scale, mask, BlockView.of(out));
      }
      problem.gather(r, out);
      return null;
    });
    double err = problem.relativeError();
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void rejectsAShardOfTheWrongSize() throws Exception {
    ShardLayout layout = ShardLayout.contiguous(10, 2);
    List<String> msgs = ThreadRanks.run(2, comm -> {
      Tensor x = Tensor.zeros(1, 4, 1, 8);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        return assertThrows(IllegalArgumentException.class,
            () -> new RingStrategy(comm, layout, kernel).attend(BlockView.of(x), BlockView.of(x),
                BlockView.of(x), 1f, AttentionMask.NONE, BlockView.of(x))).getMessage();
      }
    });
    assertEquals("rank 0 got 4 rows but its shard holds 5", msgs.get(0));
  }

  // The other strategy tests' helpers, now in ShardedProblem.
  static Tensor rows(Tensor t, List<ShardLayout.Segment> segs) {
    return ShardedProblem.rows(t, segs);
  }

  static void scatter(Tensor shard, List<ShardLayout.Segment> segs, Tensor full) {
    ShardedProblem.scatter(shard, segs, full);
  }

  static double relErr(float[] a, float[] e) {
    return dev.mosaic.kernels.RelativeError.of(a, e);
  }
}
