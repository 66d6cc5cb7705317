package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.ThreadRanks;
import dev.mosaic.test.TestSeed;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Table statistics reduced over real TCP ranks equal the local ones on the whole table. */
class ShardedTableStatsTest {

  /**
   * Shard sizes over a 41-row table with 25 train rows: rank 0 holds only train rows, the last
   * rank (in the 3-way cuts) only test rows, and the sizes are uneven.
   */
  @ParameterizedTest
  @ValueSource(strings = {"41", "10,31", "25,16", "7,18,16", "12,20,9", "1,1,39"})
  void statsOverRanksEqualTheLocalOnes(String cut) throws Exception {
    int[] sizes = Arrays.stream(cut.split(",")).mapToInt(Integer::parseInt).toArray();
    int rows = 41;
    int nTrain = 25;
    int features = 5;
    Tensor x = awkwardTable(new Random(TestSeed.mix(TestSeed.get(), sizes.length)), rows,
        features);
    float[] y = new float[rows];
    for (int r = 0; r < rows; r++) {
      y[r] = r % 3;
    }
    TableStats local = TableStats.ofTrainRows(x, Arrays.copyOf(y, nTrain));
    List<TableStats> reduced = ThreadRanks.run(sizes.length, comm -> {
      long offset = 0;
      for (int r = 0; r < comm.rank(); r++) {
        offset += sizes[r];
      }
      int n = sizes[comm.rank()];
      Tensor shard = Tensor.of(Arrays.copyOfRange(x.data(), (int) offset * features,
          (int) (offset + n) * features), n, features);
      float[] yShard = Arrays.copyOfRange(y, (int) offset, (int) offset + n);
      return ShardedTableStats.reduce(comm, shard, yShard, offset, nTrain);
    });
    for (TableStats s : reduced) {
      assertWithinOneUlp(local.mean(), s.mean(), "mean");
      assertWithinOneUlp(local.scale(), s.scale(), "scale");
      assertWithinOneUlp(new float[] {local.labelMean()}, new float[] {s.labelMean()}, "label");
      assertEquals(nTrain, s.nTrain());
      // every rank must get the very same numbers: their shards are encoded with them
      assertArrayEquals(reduced.get(0).mean(), s.mean(), 0f);
      assertArrayEquals(reduced.get(0).scale(), s.scale(), 0f);
    }
  }

  @Test
  void maxTrainLabelSkipsTestRowsAndShardsWithoutTrainRows() throws Exception {
    float[] y = {0, 4, 1, 2, 9, 9};
    int[] sizes = {2, 2, 2};
    List<Float> max = ThreadRanks.run(3, comm -> ShardedTableStats.maxTrainLabel(comm,
        Arrays.copyOfRange(y, 2 * comm.rank(), 2 * comm.rank() + 2), sizes[comm.rank()],
        2L * comm.rank(), 3));
    assertEquals(List.of(4f, 4f, 4f), max);
  }

  @Test
  void shardsWithDifferentFeatureCountsFailNamingIt() throws Exception {
    List<String> errors = ThreadRanks.run(2, comm -> {
      int features = 3 + comm.rank();
      Tensor shard = Tensor.of(new float[2 * features], 2, features);
      try {
        ShardedTableStats.reduce(comm, shard, new float[2], 2L * comm.rank(), 3);
        return "no error";
      } catch (IllegalArgumentException e) {
        return e.getMessage();
      }
    });
    for (String e : errors) {
      assertTrue(e.contains("every shard must have the same number of features"), e);
    }
  }

  @Test
  void doublesTravelExactly() {
    double[] v = {0, -0.0, 1e300, -1.0 / 3, Double.MIN_VALUE, Math.PI * 1e12, 5e6 * 20_000};
    assertArrayEquals(v, ShardedTableStats.decode(ShardedTableStats.encode(v)), 0);
  }

  /** Normal columns plus a constant, a huge-scaled and offset, a negative and a tiny one. */
  static Tensor awkwardTable(Random rnd, int rows, int features) {
    float[] v = new float[rows * features];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < features; c++) {
        double g = rnd.nextGaussian();
        v[r * features + c] = (float) switch (c) {
          case 0 -> 3.25;
          case 1 -> 5e6 + 1e6 * g;
          case 2 -> -Math.abs(g) - 7;
          case 3 -> 1e-7 * g;
          default -> g;
        };
      }
    }
    return Tensor.of(v, rows, features);
  }

  private static void assertWithinOneUlp(float[] expected, float[] actual, String what) {
    assertEquals(expected.length, actual.length, what);
    for (int i = 0; i < expected.length; i++) {
      assertTrue(Math.abs(expected[i] - actual[i]) <= Math.ulp(expected[i]),
          what + "[" + i + "]: local " + expected[i] + ", reduced " + actual[i]);
    }
  }
}
