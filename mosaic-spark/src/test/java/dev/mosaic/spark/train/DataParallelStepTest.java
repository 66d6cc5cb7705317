package dev.mosaic.spark.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.prior.Prior;
import dev.mosaic.spark.prior.PriorSizes;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class DataParallelStepTest {
  @Test
  void everySlotGoesToExactlyOneRankAndTheLoadsStayWithinTheLargestTable() {
    Prior prior = new Prior(PriorSizes.defaults(), TestSeed.random().nextLong());
    for (int size = 1; size <= 4; size++) {
      for (int batch : new int[] {1, 3, 8, 13}) {
        for (long step = 0; step < 20; step++) {
          List<Integer> all = new ArrayList<>();
          double[] load = new double[size];
          double largest = 0;
          for (int r = 0; r < size; r++) {
            for (int slot : DataParallelStep.slotsOf(r, size, prior, PriorSizes.defaults(), step,
                batch)) {
              all.add(slot);
              int[] rf = prior.size(PriorSizes.defaults(), step, slot);
              double c = DataParallelStep.estimatedCost(rf[0], rf[1]);
              load[r] += c;
              largest = Math.max(largest, c);
            }
          }
          all.sort(null);
          List<Integer> expected = new ArrayList<>();
          for (int i = 0; i < batch; i++) {
            expected.add(i);
          }
          assertEquals(expected, all, "slots of step " + step + " over " + size + " ranks");
          // Greedy (largest first, to the least loaded) never leaves a rank more than the largest
          // table above another.
          double max = 0;
          double min = Double.MAX_VALUE;
          for (double l : load) {
            max = Math.max(max, l);
            min = Math.min(min, l);
          }
          assertTrue(max - min <= largest + 1e-9, "loads " + java.util.Arrays.toString(load));
        }
      }
    }
  }
}
