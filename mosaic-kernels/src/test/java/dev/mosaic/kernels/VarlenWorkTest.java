package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The varlen split: every tile exactly once, and threads balanced by cost, not count. */
class VarlenWorkTest {

  @Test
  void coversEveryTileOfEveryHeadOnce() {
    int[] lengths = {1, 0, 64, 65, 300, 17, 4000};
    VarlenSequences seqs = VarlenSequences.of(VarlenSequences.offsets(lengths));
    int heads = 3;
    VarlenWork.Unit[] units =
        VarlenWork.plan(seqs, heads, AttentionMask.causalMask(), 64, 16, 2);
    int[][][] seen = new int[lengths.length][heads][];
    for (int s = 0; s < lengths.length; s++) {
      for (int h = 0; h < heads; h++) {
        seen[s][h] = new int[(lengths[s] + 63) / 64];
      }
    }
    for (VarlenWork.Unit u : units) {
      for (int t = u.tileFrom(); t < u.tileTo(); t++) {
        seen[u.seq()][u.head()][t]++;
      }
    }
    for (int s = 0; s < lengths.length; s++) {
      for (int h = 0; h < heads; h++) {
        for (int t = 0; t < seen[s][h].length; t++) {
          assertEquals(1, seen[s][h][t], "sequence " + s + " head " + h + " tile " + t);
        }
      }
    }
  }

  @Test
  void threadsAreBalancedByCostNotCount() {
    // Log-uniform lengths 16..8192 and one head: a split by count would give one thread the
    // long sequences; units handed out most expensive first (as Parallel.forEach does, each idle
    // thread taking the next) must end within a few percent of the average.
    Random rnd = new Random(TestSeed.mix(TestSeed.get(), 14));
    int[] lengths = new int[400];
    for (int s = 0; s < lengths.length; s++) {
      lengths[s] = (int) Math.round(Math.exp(Math.log(16) + rnd.nextDouble()
          * (Math.log(8192) - Math.log(16))));
    }
    lengths[123] = 8192;
    java.util.Arrays.sort(lengths); // as a table sorted by length arrives
    VarlenSequences seqs = VarlenSequences.of(VarlenSequences.offsets(lengths));
    for (AttentionMask mask : new AttentionMask[] {AttentionMask.NONE,
        AttentionMask.causalMask()}) {
      for (int threads : new int[] {2, 3, 8}) {
        VarlenWork.Unit[] units = VarlenWork.plan(seqs, 1, mask, 64, 16, threads);
        long total = 0;
        for (VarlenWork.Unit u : units) {
          total += u.cost();
        }
        double average = (double) total / threads;
        double greedy = maxLoad(units, threads);
        assertTrue(greedy <= 1.1 * average, threads + " threads, " + mask + ": busiest "
            + greedy + " vs average " + average);
        // For contrast, sequences dealt out by count in table order: far worse.
        assertTrue(byCount(seqs, units, threads) > 1.3 * average, "by count is not worse");
      }
    }
  }

  /** The busiest thread when each idle thread takes the next unit in the plan's order. */
  private static long maxLoad(VarlenWork.Unit[] units, int threads) {
    long[] load = new long[threads];
    for (VarlenWork.Unit u : units) {
      int idle = 0;
      for (int t = 1; t < threads; t++) {
        if (load[t] < load[idle]) {
          idle = t;
        }
      }
      load[idle] += u.cost();
    }
    long max = 0;
    for (long l : load) {
      max = Math.max(max, l);
    }
    return max;
  }

  /** Sequences split into equal-count contiguous blocks, one per thread. */
  private static long byCount(VarlenSequences seqs, VarlenWork.Unit[] units, int threads) {
    long[] load = new long[threads];
    int per = (seqs.count() + threads - 1) / threads;
    for (VarlenWork.Unit u : units) {
      load[u.seq() / per] += u.cost();
    }
    long max = 0;
    for (long l : load) {
      max = Math.max(max, l);
    }
    return max;
  }
}
