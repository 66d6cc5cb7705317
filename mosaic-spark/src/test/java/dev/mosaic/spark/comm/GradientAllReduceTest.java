package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.ThreadRanks;
import dev.mosaic.test.TestSeed;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Sum and mean of named gradients over ranks-as-threads with real TCP communicators. */
@Timeout(120)
class GradientAllReduceTest {
  private static final String[] NAMES = {"out_proj.weight", "in_proj_bias", "encoder.0.weight"};
  private static final int[][] SHAPES = {{4, 4}, {12}, {3, 5, 2}};
  private final long seed = TestSeed.get();

  /** Rank r's gradients: seeded by (seed, r), inserted in a rank-dependent order. */
  private Map<String, Tensor> gradients(int rank) {
    Random rnd = new Random(TestSeed.mix(seed, rank));
    Map<String, Tensor> m = new LinkedHashMap<>();
    for (int i = 0; i < NAMES.length; i++) {
      int j = (i + rank) % NAMES.length; // insertion order must not matter
      m.put(NAMES[j], Tensor.randn(rnd, 1f, SHAPES[j]));
    }
    return m;
  }

  @Test
  void sumAndMeanEqualTheElementwiseSumsOnEveryRank() throws Exception {
    for (int p : new int[] {1, 2, 3}) {
      for (GradientAllReduce.Mode mode : GradientAllReduce.Mode.values()) {
        List<Map<String, Tensor>> got = ThreadRanks.run(p, comm -> {
          Map<String, Tensor> g = gradients(comm.rank());
          Map<String, Tensor> before = new LinkedHashMap<>(g);
          GradientAllReduce.allReduce(comm, g, mode);
          before.forEach((name, t) -> assertSame(t, g.get(name), "reduced in place: " + name));
          return g;
        });
        for (String name : NAMES) {
          // Expected in double; the ring all-reduce adds p fp32 numbers of O(1): error ~ p·ε.
          float[] expected = new float[got.get(0).get(name).size()];
          for (int i = 0; i < expected.length; i++) {
            double s = 0;
            for (int r = 0; r < p; r++) {
              s += gradients(r).get(name).data()[i];
            }
            expected[i] = (float) (mode == GradientAllReduce.Mode.MEAN ? s / p : s);
          }
          for (int r = 0; r < p; r++) {
            assertArrayEquals(expected, got.get(r).get(name).data(), 1e-5f,
                mode + " of " + name + " on rank " + r + " of " + p + "; "
                    + TestSeed.replayHint());
            // Bit-identical on every rank, so that optimizer steps never drift apart.
            assertArrayEquals(got.get(0).get(name).data(), got.get(r).get(name).data(), 0f);
          }
        }
      }
    }
  }

  @Test
  void mismatchedGradientsFailOnEveryRankNamingBoth() throws Exception {
    List<String> msgs = ThreadRanks.run(2, comm -> {
      Map<String, Tensor> g = new LinkedHashMap<>();
      g.put("w", Tensor.zeros(comm.rank() == 0 ? 3 : 4));
      return assertThrows(IllegalArgumentException.class,
          () -> GradientAllReduce.allReduce(comm, g, GradientAllReduce.Mode.SUM)).getMessage();
    });
    String expected = "gradient all-reduce: rank 1 has gradients [w [4]] but rank 0 has [w [3]];"
        + " every rank needs the same names and shapes";
    assertEquals(List.of(expected, expected), msgs);
  }
}
