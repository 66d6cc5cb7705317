package dev.mosaic.spark.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class RaggedPlannerTest {
  private static final long MIB = 1L << 20;

  private static RaggedPlanner.Settings settings(long memory, int maxShards, int slots,
      String backend) {
    return new RaggedPlanner.Settings(4, 16, 1, false, Long.MAX_VALUE, memory, maxShards, slots,
        backend);
  }

  /** Every sequence lands exactly once: in one packed task or in one stage. */
  private static void assertPartition(RaggedPlan plan) {
    int[] seen = new int[plan.lengths().length];
    for (RaggedPlan.PackedTask t : plan.tasks()) {
      for (int i : t.sequences()) {
        seen[i]++;
        assertEquals(t.index(), plan.packedTask()[i]);
        assertEquals(-1, plan.stageOf()[i]);
      }
    }
    for (RaggedPlan.Stage s : plan.stages()) {
      for (int i : s.sequences()) {
        seen[i]++;
        assertEquals(s.index(), plan.stageOf()[i]);
        assertEquals(-1, plan.packedTask()[i]);
      }
    }
    for (int i = 0; i < seen.length; i++) {
      assertEquals(1, seen[i], "sequence " + i + " placed " + seen[i] + " times");
    }
  }

  @Test
  void logUniformLengthsPackWithinTheLptBound() {
    Random rnd = TestSeed.random();
    long[] lengths = new long[2000];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = Math.round(Math.exp(Math.log(16) + rnd.nextDouble() * Math.log(4096 / 16.0)));
    }
    for (int slots : new int[] {1, 3, 4, 16}) {
      RaggedPlan plan = RaggedPlanner.plan(lengths, settings(1L << 30, 4, slots, Backends.RING));
      assertPartition(plan);
      assertTrue(plan.stages().isEmpty(), "everything fits one task at 1 GiB");
      assertEquals(slots, plan.tasks().size());
      double total = 0;
      for (long n : lengths) {
        total += RaggedPlanner.cost(n, plan.settings());
      }
      double sum = plan.tasks().stream().mapToDouble(RaggedPlan.PackedTask::cost).sum();
      assertEquals(total, sum, total * 1e-12, "costs add up");
      // Graham: LPT <= (4/3 - 1/(3m)) OPT, and OPT >= the lower bound.
      double bound = (4.0 / 3 - 1.0 / (3 * slots)) * plan.packingLowerBound();
      assertTrue(plan.heaviestTaskCost() <= bound * (1 + 1e-12), "slots " + slots + ": heaviest "
          + plan.heaviestTaskCost() + " > LPT bound " + bound);
    }
  }

  @Test
  void fewerSequencesThanSlotsGetOneTaskEach() {
    RaggedPlan plan = RaggedPlanner.plan(new long[] {10, 300, 20}, settings(1L << 30, 2, 8,
        Backends.RING));
    assertEquals(3, plan.tasks().size());
    for (RaggedPlan.PackedTask t : plan.tasks()) {
      assertEquals(1, t.sequences().length);
    }
    assertEquals(0, plan.packedTask()[1], "the costliest sequence goes first");
  }

  @Test
  void longSequencesGoToTheFewestBarrierTasksThatFit() {
    RaggedPlanner.Settings s = settings(16 * MIB, 16, 4, Backends.RING);
    long[] lengths = {100, 20_000, 50, 21_000, 60_000};
    RaggedPlan plan = RaggedPlanner.plan(lengths, s);
    assertPartition(plan);
    assertEquals(-1, plan.stageOf()[0]);
    assertEquals(-1, plan.stageOf()[2]);
    for (int i : new int[] {1, 3, 4}) {
      assertTrue(RaggedPlanner.wholeMemory(lengths[i], s) > s.taskMemoryBytes());
      RaggedPlan.Stage st = plan.stages().get(plan.stageOf()[i]);
      assertEquals(Backends.RING, st.strategy().backend());
      assertFalse(st.overMemory());
      assertTrue(st.memoryPerTask() <= s.taskMemoryBytes());
      long fewer = RaggedPlanner.shardMemory(lengths[i], st.tasks() - 1,
          dev.mosaic.spark.strategy.StrategySpec.of(st.tasks() - 1 == 1 ? Backends.LOCAL
              : Backends.RING), s);
      assertTrue(fewer > s.taskMemoryBytes(), "sequence " + i + " would fit on "
          + (st.tasks() - 1) + " tasks");
    }
    assertEquals(plan.stageOf()[1], plan.stageOf()[3], "similar lengths share a stage");
    assertTrue(plan.stages().get(plan.stageOf()[4]).tasks()
        > plan.stages().get(plan.stageOf()[1]).tasks());
    String text = plan.describe();
    assertTrue(text.contains("packed: 2 sequences in 2 ordinary tasks"), text);
    assertTrue(text.contains("sharded: 3 sequences in 2 barrier stage(s)"), text);
  }

  @Test
  void tinyTaskMemoryShardsEverythingOverMaxShardsAndSaysSo() {
    RaggedPlan plan = RaggedPlanner.plan(new long[] {40, 41, 1}, settings(1, 3, 4,
        Backends.RING));
    assertPartition(plan);
    assertEquals(1, plan.stages().size());
    RaggedPlan.Stage st = plan.stages().get(0);
    assertEquals(3, st.tasks());
    assertTrue(st.overMemory());
    assertEquals(0, plan.packedTask()[2], "one position cannot be cut: it runs whole");
    assertTrue(plan.tasks().get(0).overMemory());
    assertTrue(plan.describe().contains("over the task memory even on 3 tasks"), plan.describe());
  }

  @Test
  void causalShortSequencesUseFewerShardsSoEveryZigzagShardHasPositions() {
    RaggedPlan plan = RaggedPlanner.plan(new long[] {5}, new RaggedPlanner.Settings(2, 8, 1, true,
        Long.MAX_VALUE, 1, 4, 4, Backends.RING));
    int p = plan.stages().get(0).tasks();
    assertTrue(RaggedPlanner.nonEmptyShards(5, p, true));
    assertFalse(p < 4 && RaggedPlanner.nonEmptyShards(5, p + 1, true));
  }

  @Test
  void autoTakesThePlannersStrategy() {
    RaggedPlanner.Settings s = settings(16 * MIB, 8, 2, Backends.AUTO);
    RaggedPlan plan = RaggedPlanner.plan(new long[] {30_000}, s);
    RaggedPlan.Stage st = plan.stages().get(0);
    Planner.Candidate best = Planner.recommend(new Planner.Problem(30_000, 4, 16, st.tasks(), 1,
        s.taskMemoryBytes(), false));
    assertEquals(best.spec(), st.strategy());
  }

  @Test
  void badSettingsAndLengthsAreRefused() {
    assertEquals("backend must be 'ring' or 'auto' for sharded sequences, got 'ulysses'",
        assertThrows(IllegalArgumentException.class,
            () -> settings(MIB, 2, 2, Backends.ULYSSES)).getMessage());
    assertEquals("sequence 1 has length 0, expected at least 1",
        assertThrows(IllegalArgumentException.class,
            () -> RaggedPlanner.plan(new long[] {3, 0}, settings(MIB, 2, 2, Backends.RING)))
            .getMessage());
  }
}
