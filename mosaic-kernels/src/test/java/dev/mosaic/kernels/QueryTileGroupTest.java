package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.ScalarFlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Query tiles walking the keys in groups ({@code CpuFlashAttention}'s cache blocking) give the
 * same bits as one tile at a time: each tile still sees the same key tiles in the same order, so
 * the comparison is exact — outputs and lse, dense and varlen, masks, grouped-query K/V, both
 * threading paths (over heads, and over a head's tiles), SIMD and scalar ops.
 */
class QueryTileGroupTest {
  private static final Random SEEDS = TestSeed.random();

  @ParameterizedTest(name = "n={0} heads={1} kvHeads={2} d={3} threads={4} mask={5}")
  @CsvSource({
      "700, 8, 8, 16, 2, causal",
      "700, 8, 2, 64, 2, none",
      "1000, 4, 4, 32, 1, causal",
      "65, 8, 8, 16, 2, causal",
      "2100, 1, 1, 16, 2, causal", // one head: threads split its 33 tiles into groups of 2
      "2100, 2, 1, 24, 2, window",
      "333, 3, 3, 40, 2, limit"})
  void groupedTilesGiveTheSameBits(int n, int heads, int kvHeads, int d, int threads,
      String maskName) {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 1f, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, n, kvHeads, d);
    Tensor v = Tensor.randn(rnd, 1f, n, kvHeads, d);
    AttentionMask mask = switch (maskName) {
      case "causal" -> AttentionMask.causalMask();
      case "limit" -> AttentionMask.keyLimit(200);
      case "window" -> new AttentionMask(true, 5, 2, 900);
      default -> AttentionMask.NONE;
    };
    for (FlashOps ops : new FlashOps[] {VectorizationProvider.ops(), new ScalarFlashOps()}) {
      float[][] one = dense(q, k, v, mask, threads, ops, 1);
      for (int group : new int[] {2, 3, 4, 16}) {
        float[][] grouped = dense(q, k, v, mask, threads, ops, group);
        assertArrayEquals(one[0], grouped[0], ops.name() + " group " + group + " output");
        assertArrayEquals(one[1], grouped[1], ops.name() + " group " + group + " lse");
      }
    }
  }

  @Test
  void varlenGroupsGiveTheSameBits() {
    Random rnd = new Random(SEEDS.nextLong());
    int[] lengths = {1, 700, 0, 65, 130, 3, 1300};
    int[] cu = VarlenSequences.offsets(lengths);
    int n = cu[lengths.length];
    int heads = 2;
    int d = 16;
    Tensor q = Tensor.randn(rnd, 1f, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, n, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, n, heads, d);
    float[][] results = new float[4][];
    int[] groups = {1, 4};
    for (int i = 0; i < groups.length; i++) {
      try (CpuFlashAttention kernel =
          new CpuFlashAttention(2, VectorizationProvider.ops(), groups[i])) {
        Tensor out = Tensor.zeros(n, heads, d);
        float[] lse = new float[n * heads];
        kernel.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v),
            VarlenSequences.of(cu), 0.25f, AttentionMask.causalMask(), BlockView.of(out), lse);
        results[2 * i] = out.data();
        results[2 * i + 1] = lse;
      }
    }
    assertArrayEquals(results[0], results[2], "varlen output");
    assertArrayEquals(results[1], results[3], "varlen lse");
  }

  @Test
  void groupSizeIsChecked() {
    assertEquals(4, CpuFlashAttention.group(null));
    assertEquals(7, CpuFlashAttention.group(" 7 "));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CpuFlashAttention.group("0"));
    assertEquals("mosaic.kernel.queryTileGroup must be an integer from 1 to 16, got '0'",
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> CpuFlashAttention.group("four"));
    assertThrows(IllegalArgumentException.class,
        () -> new CpuFlashAttention(1, new ScalarFlashOps(), 0));
  }

  private static float[][] dense(Tensor q, Tensor k, Tensor v, AttentionMask mask, int threads,
      FlashOps ops, int group) {
    int n = q.shape()[0];
    int heads = q.shape()[1];
    int d = q.shape()[2];
    Tensor out = Tensor.zeros(n, heads, d);
    float[] lse = new float[n * heads];
    try (CpuFlashAttention kernel = new CpuFlashAttention(threads, ops, group)) {
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
          (float) (1 / Math.sqrt(d)), mask, BlockView.of(out), lse);
    }
    return new float[][] {out.data(), lse};
  }
}
