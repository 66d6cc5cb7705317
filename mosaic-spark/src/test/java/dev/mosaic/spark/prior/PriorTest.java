package dev.mosaic.spark.prior;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.test.TestSeed;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The prior: deterministic, within its sizes, well-formed labels, and learnable. */
class PriorTest {
  private static final long SEED = TestSeed.get();

  @Test
  void sameSeedAndKeysGiveABitIdenticalTable() {
    Prior a = new Prior(PriorSizes.defaults(), SEED);
    Prior b = new Prior(PriorSizes.defaults(), SEED);
    for (long step = 0; step < 20; step++) {
      PriorDataset x = a.sample(step, 1, 2);
      PriorDataset y = b.sample(step, 1, 2);
      assertArrayEquals(x.x(), y.x(), "x of step " + step);
      assertArrayEquals(x.y(), y.y(), "y of step " + step);
      assertEquals(x.nTrain(), y.nTrain());
    }
    PriorDataset p = a.sample(3, 0, 0);
    PriorDataset q = a.sample(3, 1, 0);
    PriorDataset r = new Prior(PriorSizes.defaults(), SEED + 1).sample(3, 0, 0);
    assertFalse(Arrays.equals(p.x(), q.x()), "another rank draws another table");
    assertFalse(Arrays.equals(p.x(), r.x()), "another seed draws another table");
  }

  @Test
  void tablesStayWithinTheirSizesAndEveryClassIsInTrain() {
    PriorSizes sizes = PriorSizes.defaults();
    Prior prior = new Prior(sizes, SEED);
    Set<String> kinds = new HashSet<>();
    int maxClassesSeen = 0;
    int maxFeaturesSeen = 0;
    for (int i = 0; i < 300; i++) {
      PriorDataset d = prior.sample(i);
      kinds.add(d.kind());
      assertTrue(d.rows() >= sizes.minRows() && d.rows() <= sizes.maxRows(), "rows " + d.rows());
      assertTrue(d.features() >= 1 && d.features() <= sizes.maxFeatures());
      assertTrue(d.classes() >= 2 && d.classes() <= sizes.maxClasses());
      assertTrue(d.nTrain() >= d.classes() && d.nTrain() < d.rows(), "nTrain " + d.nTrain());
      assertEquals(d.rows() * d.features(), d.x().length);
      for (float v : d.x()) {
        assertTrue(Float.isFinite(v), "dataset " + i + " has a non-finite feature");
      }
      boolean[] inTrain = new boolean[d.classes()];
      for (int r = 0; r < d.rows(); r++) {
        float y = d.y()[r];
        assertTrue(y == Math.rint(y) && y >= 0 && y < d.classes(), "label " + y);
        if (r < d.nTrain()) {
          inTrain[(int) y] = true;
        }
      }
      for (int c = 0; c < d.classes(); c++) {
        assertTrue(inTrain[c], "dataset " + i + ": class " + c + " has no train row");
      }
      maxClassesSeen = Math.max(maxClassesSeen, d.classes());
      maxFeaturesSeen = Math.max(maxFeaturesSeen, d.features());
    }
    assertEquals(Set.of("mlp", "trees"), kinds);
    assertEquals(sizes.maxClasses(), maxClassesSeen);
    assertEquals(sizes.maxFeatures(), maxFeaturesSeen);
  }

  @Test
  void theCurriculumKnobBoundsTheTables() {
    PriorSizes start = PriorSizes.smallBinary();
    PriorSizes end = PriorSizes.defaults();
    assertEquals(start, start.towards(end, 0));
    assertEquals(end, start.towards(end, 1));
    PriorSizes mid = start.towards(end, 0.5);
    assertEquals(new PriorSizes(35, 575, 18, 6), mid);
    Prior prior = new Prior(end, SEED);
    for (int i = 0; i < 50; i++) {
      PriorDataset d = prior.sample(start, i);
      assertEquals(2, d.classes());
      assertTrue(d.rows() >= 50 && d.rows() <= 150 && d.features() <= 5);
    }
  }

  @Test
  void sizeTellsTheRowsAndFeaturesThatSampleDraws() {
    Prior prior = new Prior(PriorSizes.defaults(), TestSeed.random().nextLong());
    PriorSizes small = new PriorSizes(10, 60, 7, 4);
    for (long step = 0; step < 40; step++) {
      for (PriorSizes sizes : new PriorSizes[] {PriorSizes.defaults(), small}) {
        PriorDataset t = prior.sample(sizes, step, 3);
        assertArrayEquals(new int[] {t.rows(), t.features()}, prior.size(sizes, step, 3),
            "step " + step + ", sizes " + sizes);
      }
    }
  }
}
