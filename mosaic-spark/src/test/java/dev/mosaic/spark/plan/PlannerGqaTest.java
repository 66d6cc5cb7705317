package dev.mosaic.spark.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.strategy.Backends;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The planners under grouped-query attention (G K/V heads below H): k and v of G heads in memory,
 * the ring's K/V traffic H/G times smaller, mesh2d and composed (which do not run GQA) left out,
 * and the ragged planner packing a sequence whole that multi-head attention would shard. Expected
 * numbers are worked out by hand from the formulas in docs/performance.md, in the comments.
 */
@Timeout(60)
class PlannerGqaTest {
  private static final int H = 8;
  private static final int G = 2;
  private static final int D = 16;

  @Test
  void oneDeviceHoldsKeyValuesOfTheKeyValueHeadsOnly() {
    // n = 1000: q, out 2·1000·8·16 floats + k, v 2·1000·2·16 = 320,000 floats = 1,280,000 B;
    // LSE 1000·8·4 = 32,000 B; kernel tiles 4·(2·64·16 + 64·64) = 24,576 B.
    RaggedPlanner.Settings gqa = settings(G, 1L << 30);
    assertEquals(1_280_000 + 32_000 + 24_576, RaggedPlanner.wholeMemory(1000, gqa));
    // Multi-head: q, k, v, out 4·1000·128 floats = 2,048,000 B.
    assertEquals(2_048_000 + 32_000 + 24_576, RaggedPlanner.wholeMemory(1000, settings(H,
        1L << 30)));
  }

  @Test
  void ringSendsOnlyTheKeyValueHeads() {
    // 1000 tokens over 4 devices, 250 each: a rank passes on 3 blocks of 250 rows of k and v,
    // G·d = 32 floats each: 3·250·2·32·4 = 192,000 B; multi-head 128 floats: 768,000 B.
    Planner.Candidate gqa = ring(new Planner.Problem(1000, H, G, D, 4, 1, 1L << 40, false));
    Planner.Candidate mha = ring(new Planner.Problem(1000, H, D, 4, 1, 1L << 40, false));
    assertEquals(192_000, gqa.bytesSent());
    assertEquals(768_000, mha.bytesSent());
    // Its activations: q, out 2·250·128 + k, v 2·250·32 floats; buffers: two [K|V] of 2·250·32,
    // accumulator and partial 2·250·128, their LSEs 2·250·8.
    assertEquals(4L * (2 * 250 * 128 + 2 * 250 * 32), gqa.activations());
    assertEquals(4L * (2 * 2 * 250 * 32 + 2 * 250 * 128 + 2 * 250 * 8), gqa.buffers());
  }

  @Test
  void onlyStrategiesThatRunGqaAreCandidates() {
    Set<String> gqa = backends(new Planner.Problem(4096, H, G, D, 4, 2, 1L << 40, true));
    assertEquals(Set.of(Backends.RING, Backends.ULYSSES, Backends.HIERARCHICAL), gqa);
    Set<String> mha = backends(new Planner.Problem(4096, H, D, 4, 2, 1L << 40, true));
    assertTrue(mha.contains(Backends.MESH2D) && mha.contains(Backends.COMPOSED), mha.toString());
    // Ulysses needs G dividing p or p dividing G: 3 K/V heads over 2 devices is left out.
    assertEquals(Set.of(Backends.RING),
        backends(new Planner.Problem(4096, 6, 3, D, 2, 1, 1L << 40, false)));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new Planner.Problem(4096, 6, 4, D, 2, 1, 1L << 40, false));
    assertEquals("kvHeads 4 must be positive and divide heads 6", e.getMessage());
  }

  @Test
  void raggedPlannerPacksWholeWhatMultiHeadWouldShard() {
    long memory = RaggedPlanner.wholeMemory(1000, settings(G, 1L << 30));
    long[] lengths = {10, 1000};
    RaggedPlan gqa = RaggedPlanner.plan(lengths, settings(G, memory));
    assertTrue(gqa.stages().isEmpty(), gqa.describe());
    assertTrue(gqa.describe().contains("8 heads (2 K/V) x 16"), gqa.describe());
    RaggedPlan mha = RaggedPlanner.plan(lengths, settings(H, memory));
    assertEquals(1, mha.stages().size(), mha.describe());
    assertFalse(mha.describe().contains("K/V)"), mha.describe());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> settings(3, memory));
    assertTrue(e.getMessage().startsWith("kvHeads 3 must be positive and divide heads 8"),
        e.getMessage());
  }

  private static RaggedPlanner.Settings settings(int kvHeads, long memory) {
    return new RaggedPlanner.Settings(H, D, 1, false, Long.MAX_VALUE, memory, 4, 2,
        Backends.AUTO, kvHeads);
  }

  private static Planner.Candidate ring(Planner.Problem pr) {
    return Planner.candidates(pr).stream()
        .filter(c -> c.spec().backend().equals(Backends.RING)).findFirst().orElseThrow();
  }

  private static Set<String> backends(Planner.Problem pr) {
    List<Planner.Candidate> all = Planner.candidates(pr);
    return all.stream().map(c -> c.spec().backend()).collect(Collectors.toSet());
  }
}
