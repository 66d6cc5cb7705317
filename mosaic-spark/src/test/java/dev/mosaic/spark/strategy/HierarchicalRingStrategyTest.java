package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.ReferenceAttention;
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

/** Two-level ring over ranks-as-threads with real TCP communicators, against the reference. */
@Timeout(120)
class HierarchicalRingStrategyTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(4, 2, ShardLayout.contiguous(101, 4), AttentionMask.NONE),
        Arguments.of(4, 1, ShardLayout.contiguous(64, 4), AttentionMask.NONE),
        Arguments.of(4, 4, ShardLayout.contiguous(64, 4), AttentionMask.causalMask()),
        Arguments.of(6, 3, ShardLayout.zigzag(150, 6), AttentionMask.causalMask()),
        Arguments.of(6, 2, ShardLayout.contiguous(new int[] {5, 30, 0, 22, 17, 9}),
            new AttentionMask(true, 0, 0, 60)),
        Arguments.of(4, 2, ShardLayout.contiguous(80, 4), AttentionMask.keyLimit(33)));
  }

  @ParameterizedTest(name = "p={0} intra={1} {2} {3}")
  @MethodSource("cases")
  void equalsFullAttention(int p, int intra, ShardLayout layout, AttentionMask mask)
      throws Exception {
    int batch = 2;
    int heads = 2;
    int d = 16;
    int n = (int) layout.total();
    Tensor q = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor expected = Tensor.zeros(batch, n, heads, d);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.25f,
        mask, BlockView.of(expected), new float[batch * n * heads]);
    List<Tensor> outs = ThreadRanks.run(p, comm -> {
      int r = comm.rank();
      Tensor qs = RingStrategyTest.rows(q, layout.segments(r));
      Tensor out = Tensor.zeros(qs.shape());
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        new HierarchicalRingStrategy(comm, layout, intra, kernel).attend(BlockView.of(qs),
            BlockView.of(RingStrategyTest.rows(k, layout.segments(r))),
            BlockView.of(RingStrategyTest.rows(v, layout.segments(r))), 0.25f, mask,
            BlockView.of(out));
      }
      return out;
    });
    Tensor actual = Tensor.zeros(batch, n, heads, d);
    for (int r = 0; r < p; r++) {
      RingStrategyTest.scatter(outs.get(r), layout.segments(r), actual);
    }
    double err = RingStrategyTest.relErr(actual.data(), expected.data());
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void unequalNodesAreRefused() throws Exception {
    List<String> msgs = ThreadRanks.run(3, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        return assertThrows(IllegalArgumentException.class,
            () -> new HierarchicalRingStrategy(comm, ShardLayout.contiguous(9, 3), 2, kernel))
            .getMessage();
      }
    });
    assertEquals("hierarchical attention needs nodes of equal size: 3 ranks cannot form nodes of"
        + " 2 (use a divisor of 3)", msgs.get(0));
  }
}
