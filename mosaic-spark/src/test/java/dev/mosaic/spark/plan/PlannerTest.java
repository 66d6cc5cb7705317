package dev.mosaic.spark.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.spark.strategy.ThreadRanks;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class PlannerTest {

  private static Map<String, Planner.Candidate> byName(Planner.Problem pr) {
    return Planner.candidates(pr).stream()
        .collect(Collectors.toMap(c -> c.spec().toString(), c -> c));
  }

  /** n = 1024, 8 heads x 64, 4 devices, one node, no mask: every number by hand. */
  @Test
  void fourDevicesByHand() {
    Planner.Problem pr = new Planner.Problem(1024, 8, 64, 4, 1, 80L << 30, false);
    Map<String, Planner.Candidate> c = byName(pr);
    long g = 8 * 64; // floats per token
    long shard = 256;
    // ring: 3 steps, each one [K|V] block of 256 rows: 3 * 2 * 256 * 512 * 4 bytes
    assertEquals(3L * 2 * 256 * 512 * 4, c.get("ring").bytesSent());
    assertEquals(3_145_728L, c.get("ring").bytesSent());
    // activations q,k,v,out = 4 * 256 * 512 * 4 bytes = 2 MiB; buffers: 2 [K|V] (4 * shard * g),
    // acc + partial (2 * shard * g), two LSEs (2 * shard * heads), all fp32
    assertEquals(2_097_152L, c.get("ring").activations());
    assertEquals(4L * (4 * shard * g + 2 * shard * g + 2 * shard * 8), c.get("ring").buffers());
    // ulysses: 16 * n * H * d * (p-1) / p^2 = 16 * 1024 * 512 * 3 / 16
    assertEquals(16L * 1024 * 512 * 3 / 16, c.get("ulysses").bytesSent());
    assertEquals(1_572_864L, c.get("ulysses").bytesSent());
    // mesh2d 2x2: 4 * h * (n/p) * [(C-1) d + 2 d + (C-1)(d+1)] = 4*8*256*(64+128+65)
    assertEquals(4L * 8 * 256 * (64 + 128 + 65), c.get("mesh2d 2x2").bytesSent());
    // composed 2x2: head all-to-all 3 * 256 * 4 heads * 64 * 1 peer + back 256 * 4 * 64, then a
    // ring of 2 groups of 512 rows x 4 heads: 1 * 2 * 512 * 4 * 64; all * 4 bytes
    long composed = 4L * (3 * 256 * 4 * 64 + 256 * 4 * 64 + 2 * 512 * 4 * 64);
    assertEquals(composed, c.get("composed 2x2 (ring)").bytesSent());
    assertEquals(Backends.ULYSSES, Planner.recommend(pr).spec().backend());
  }

  /** 150,000 tokens, 8 x 16, 4 devices in 2 nodes, causal: the seed's headline size. */
  @Test
  void twoNodesCausalByHand() {
    Planner.Problem pr = new Planner.Problem(150_000, 8, 16, 4, 2, 16L << 30, true);
    Map<String, Planner.Candidate> c = byName(pr);
    // zigzag: 8 chunks of 18,750; every rank holds 37,500 rows. Ring: 3 blocks of 37,500 rows.
    assertEquals(3L * 2 * 37_500 * 128 * 4, c.get("ring").bytesSent());
    assertEquals(c.get("ring").bytesSent(), c.get("ring").interNodeBytes());
    // hierarchical ring/ring, nodes of 2: inside the node 2 node steps x 1 block, across 1 block
    Planner.Candidate h = c.get("hierarchical ring/ring nodes of 2");
    assertEquals(3L * 2 * 37_500 * 128 * 4, h.bytesSent());
    assertEquals(1L * 2 * 37_500 * 128 * 4, h.interNodeBytes());
    // the naive score matrix would need 4 * 150000^2 bytes = 84 GiB per head; ring holds ~185 MiB
    assertTrue(c.get("ring").memory() < 200L << 20, "ring memory " + c.get("ring").memory());
    assertTrue(Planner.recommend(pr).interNodeBytes() < c.get("ring").interNodeBytes());
  }

  @Test
  void nothingFitsGivesAClearError() {
    Planner.Problem pr = new Planner.Problem(10_000_000, 8, 128, 2, 1, 1L << 30, false);
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
        IllegalArgumentException.class, () -> Planner.recommend(pr));
    assertTrue(e.getMessage().startsWith("no strategy fits 10000000 tokens on 2 devices of"
        + " 1.00 GiB: use more devices"), e.getMessage());
  }

  /** The planner's bytes for the busiest rank against what the TCP communicator counted. */
  @Test
  void plannedBytesMatchTheCommunicatorsCount() throws Exception {
    int n = 96;
    int heads = 4;
    int d = 8;
    int p = 4;
    Planner.Problem pr = new Planner.Problem(n, heads, d, p, 1, 1L << 30, false);
    Random rnd = TestSeed.random();
    Tensor x = Tensor.randn(rnd, 1f, n, heads, d);
    for (Planner.Candidate cand : Planner.candidates(pr)) {
      StrategySpec spec = cand.spec();
      ShardLayout layout = ShardLayout.contiguous(n, p);
      List<Long> sent = ThreadRanks.run(p, comm -> {
        Tensor mine = Tensor.zeros(layout.size(comm.rank()), heads, d);
        System.arraycopy(x.data(), (int) layout.segments(comm.rank()).get(0).start() * heads * d,
            mine.data(), 0, mine.size());
        try (CpuFlashAttention kernel = new CpuFlashAttention(1);
            var strategy = Backends.distributed(spec, comm, layout, kernel, p)) {
          long before = comm.bytesSent();
          strategy.attend(BlockView.of(mine), BlockView.of(mine), BlockView.of(mine), 0.3f,
              AttentionMask.NONE, BlockView.of(Tensor.zeros(mine.shape())));
          return comm.bytesSent() - before;
        }
      });
      long busiest = sent.stream().mapToLong(Long::longValue).max().orElse(0);
      assertEquals(cand.bytesSent(), busiest, "bytes of " + spec);
    }
  }
}
