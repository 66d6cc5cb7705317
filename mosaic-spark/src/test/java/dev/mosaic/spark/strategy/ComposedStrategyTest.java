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

/** Heads × sequence over ranks-as-threads, against the reference; bytes against the formula. */
@Timeout(120)
class ComposedStrategyTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(4, 2, "ring", ShardLayout.contiguous(96, 4), AttentionMask.NONE, 4),
        Arguments.of(6, 3, "ring", ShardLayout.zigzag(150, 6), AttentionMask.causalMask(), 6),
        Arguments.of(6, 2, "ring", ShardLayout.contiguous(new int[] {9, 20, 0, 31, 7, 13}),
            AttentionMask.keyLimit(50), 4),
        Arguments.of(4, 2, "mesh2d", ShardLayout.contiguous(88, 4), AttentionMask.causalMask(), 2),
        Arguments.of(4, 4, "ring", ShardLayout.contiguous(40, 4), AttentionMask.NONE, 4),
        Arguments.of(4, 1, "ring", ShardLayout.zigzag(64, 4), AttentionMask.causalMask(), 2));
  }

  @ParameterizedTest(name = "p={0} heads-ways={1} {2} {3} {4}")
  @MethodSource("cases")
  void equalsFullAttention(int p, int headWays, String seq, ShardLayout layout,
      AttentionMask mask, int heads) throws Exception {
    int batch = 2;
    int d = 8;
    int n = (int) layout.total();
    Tensor q = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor expected = Tensor.zeros(batch, n, heads, d);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.3f,
        mask, BlockView.of(expected), new float[batch * n * heads]);
    List<Object[]> outs = ThreadRanks.run(p, comm -> {
      int r = comm.rank();
      Tensor qs = RingStrategyTest.rows(q, layout.segments(r));
      Tensor out = Tensor.zeros(qs.shape());
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          ComposedStrategy s = new ComposedStrategy(comm, layout, headWays, seq, kernel)) {
        long before = comm.bytesSent();
        s.attend(BlockView.of(qs), BlockView.of(RingStrategyTest.rows(k, layout.segments(r))),
            BlockView.of(RingStrategyTest.rows(v, layout.segments(r))), 0.3f, mask,
            BlockView.of(out));
        return new Object[] {out, comm.bytesSent() - before};
      }
    });
    Tensor actual = Tensor.zeros(batch, n, heads, d);
    for (int r = 0; r < p; r++) {
      RingStrategyTest.scatter((Tensor) outs.get(r)[0], layout.segments(r), actual);
      long[] formula =
          ComposedStrategy.bytesSent(layout, headWays, seq, r, batch, heads, d, mask);
      assertEquals(formula[0] + formula[1], (long) outs.get(r)[1], "bytes sent by rank " + r);
    }
    double err = RingStrategyTest.relErr(actual.data(), expected.data());
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void headsMustSplitEvenly() throws Exception {
    List<String> msgs = ThreadRanks.run(4, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          ComposedStrategy s = new ComposedStrategy(comm, ShardLayout.contiguous(8, 4), 2,
              "ring", kernel)) {
        Tensor x = Tensor.zeros(1, 2, 3, 4);
        return assertThrows(IllegalArgumentException.class, () -> s.attend(BlockView.of(x),
            BlockView.of(x), BlockView.of(x), 1f, AttentionMask.NONE, BlockView.of(x)))
            .getMessage();
      }
    });
    assertEquals("composed attention splits heads 2 ways, but the head count (3) is not"
        + " divisible by 2", msgs.get(0));
  }
}
