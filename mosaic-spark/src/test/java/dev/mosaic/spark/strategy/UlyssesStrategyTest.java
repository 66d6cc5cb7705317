package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.Mesh2dStrategyTest.Problem;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Ulysses over ranks-as-threads with real TCP communicators, against the double reference. */
@Timeout(60)
class UlyssesStrategyTest {
  private static final AttentionMask NONE = AttentionMask.NONE;
  private static final AttentionMask CAUSAL = AttentionMask.causalMask();
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(1, ShardLayout.contiguous(40, 1), NONE, 3, 2),
        Arguments.of(2, ShardLayout.contiguous(103, 2), NONE, 4, 2),
        Arguments.of(2, ShardLayout.zigzag(101, 2), CAUSAL, 2, 1),
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 70, 28}), CAUSAL, 6, 2),
        Arguments.of(3, ShardLayout.contiguous(new int[] {50, 0, 47}), NONE, 3, 2),
        Arguments.of(3, ShardLayout.zigzag(90, 3), new AttentionMask(true, 0, 0, 41), 3, 2),
        Arguments.of(4, ShardLayout.zigzag(203, 4), CAUSAL, 4, 2),
        Arguments.of(4, ShardLayout.contiguous(130, 4), AttentionMask.keyLimit(77), 8, 2),
        Arguments.of(4, ShardLayout.contiguous(new int[] {0, 33, 9, 20}), CAUSAL, 4, 2),
        Arguments.of(2, ShardLayout.contiguous(64, 2), AttentionMask.keyLimit(0), 2, 2));
  }

  @ParameterizedTest(name = "p={0} {1} {2} heads {3} batch {4}")
  @MethodSource("cases")
  void ulyssesEqualsFullAttentionAndSendsWhatItDocuments(int p, ShardLayout layout,
      AttentionMask mask, int heads, int batch) throws Exception {
    Problem pr = Problem.random(rnd, batch, (int) layout.total(), heads, 16, mask);
    List<Problem.Result> res = ThreadRanks.run(p, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        return pr.attend(new UlyssesStrategy(comm, layout, kernel), comm, layout);
      }
    });
    double err = pr.error(res, layout);
    assertTrue(err < 1e-5, "relative error " + err);
    for (int r = 0; r < p; r++) {
      assertEquals(UlyssesStrategy.bytesSent(layout, r, batch, heads, 16), res.get(r).bytes(),
          "bytes sent by rank " + r);
    }
  }

  @Test
  void evenShardsSendTheClosedForm() {
    int n = 120;
    int b = 2;
    int h = 8;
    int d = 16;
    int p = 4;
    ShardLayout layout = ShardLayout.contiguous(n, p);
    for (int r = 0; r < p; r++) {
      assertEquals(16L * b * n * h * d * (p - 1) / (p * p),
          UlyssesStrategy.bytesSent(layout, r, b, h, d));
    }
  }

  @Test
  void headsMustDivideOverTheRanks() throws Exception {
    ShardLayout layout = ShardLayout.contiguous(16, 4);
    List<String> msgs = ThreadRanks.run(4, comm -> {
      Tensor x = Tensor.zeros(1, 4, 6, 8);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        return assertThrows(IllegalArgumentException.class,
            () -> new UlyssesStrategy(comm, layout, kernel).attend(BlockView.of(x),
                BlockView.of(x), BlockView.of(x), 1f, NONE, BlockView.of(x))).getMessage();
      }
    });
    String expected = "ulysses needs the head count (6) to be divisible by the number of ranks"
        + " (4); use 1, 2, 3 or 6 ranks, or another backend";
    for (String m : msgs) {
      assertEquals(expected, m);
    }
    assertEquals("ulysses needs the head count (1) to be divisible by the number of ranks (2);"
        + " use 1 rank, or another backend", assertThrows(IllegalArgumentException.class,
            () -> UlyssesStrategy.checkHeads(1, 2)).getMessage());
    assertEquals("ulysses needs the head count (3) to be divisible by the number of ranks (2);"
        + " use 1 or 3 ranks, or another backend", assertThrows(IllegalArgumentException.class,
            () -> UlyssesStrategy.checkHeads(3, 2)).getMessage());
  }
}
