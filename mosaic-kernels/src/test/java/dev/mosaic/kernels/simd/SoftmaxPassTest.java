package dev.mosaic.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.test.TestSeed;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link FlashOps#exp2ColumnsTrackingMax} (the kernel's one-pass softmax step) against the two
 * passes it replaces, {@code colMax} then {@code exp2Columns}, of the same implementation: the
 * kernel relies on identical bits (it mixes both paths tile by tile), so the comparison is exact,
 * and the returned flag must say exactly whether some column's max passed its entry value by
 * more than the slack. Ragged row counts, several vector counts, strided rows, masked (-inf)
 * scores and columns that have seen no key yet (max -inf). The pom runs it again under AVX2.
 */
class SoftmaxPassTest {
  private static final Random SEEDS = TestSeed.random();
  private static final float SLACK = 8f;

  static Stream<FlashOps> implementations() {
    return Stream.of(new ScalarFlashOps(), VectorizationProvider.ops());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("implementations")
  void onePassGivesTheBitsOfTheTwoPassesAndFlagsAMovedMax(FlashOps ops) {
    Random rnd = new Random(SEEDS.nextLong());
    int lanes = ops.lanes();
    int flagged = 0;
    int cases = 0;
    for (int rows : new int[] {1, 5, 13, 64}) {
      for (int vectors : new int[] {1, 2, 3, 5}) {
        for (int trial = 0; trial < 4; trial++) {
          int cols = vectors * lanes;
          int stride = cols + lanes; // padded rows, as a strided view
          int off = 3;
          float[] a = new float[off + rows * stride];
          for (int i = 0; i < a.length; i++) {
            // scores in base 2, a few of them masked
            a[i] = rnd.nextInt(20) == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian() * 6;
          }
          float[] max = new float[cols];
          float[] shift = new float[cols];
          float[] sum = new float[cols];
          boolean settled = trial % 2 == 0;
          for (int c = 0; c < cols; c++) {
            // The reference max of earlier tiles. Settled trials: every column's within the
            // slack of its scores' max (the flag must stay off); the others: random, some
            // columns with none yet (-inf), so that a few columns pass it (the flag goes on).
            float columnMax = Float.NEGATIVE_INFINITY;
            for (int r = 0; r < rows; r++) {
              columnMax = Math.max(columnMax, a[off + r * stride + c]);
            }
            if (settled) {
              max[c] = columnMax == Float.NEGATIVE_INFINITY ? 0f
                  : columnMax + (rnd.nextFloat() * 2 - 1) * 0.99f * SLACK;
            } else {
              max[c] = rnd.nextInt(8) == 0 ? Float.NEGATIVE_INFINITY
                  : (float) (rnd.nextGaussian() * 6 + 4);
            }
            shift[c] = max[c] == Float.NEGATIVE_INFINITY ? 0f : max[c];
            sum[c] = rnd.nextFloat() * 10;
          }
          float[] a2 = a.clone();
          float[] max2 = max.clone();
          float[] sum2 = sum.clone();
          ops.colMax(a2, off, stride, rows, cols, max2);
          ops.exp2Columns(a2, off, stride, rows, cols, shift, sum2);
          boolean expected = false;
          for (int c = 0; c < cols; c++) {
            expected |= max2[c] > max[c] + SLACK;
          }
          boolean passed = ops.exp2ColumnsTrackingMax(a, off, stride, rows, cols, shift, sum, max,
              SLACK);
          String what = ops.name() + " rows=" + rows + " vectors=" + vectors + " trial=" + trial;
          assertEquals(expected, passed, what + ": flag");
          assertArrayEquals(max2, max, what + ": maxima");
          // the same shift, so the same bits (the kernel keeps them only when the flag is off)
          assertArrayEquals(a2, a, what + ": exponentials");
          assertArrayEquals(sum2, sum, what + ": sums");
          flagged += passed ? 1 : 0;
          cases++;
        }
      }
    }
    // both outcomes must have been exercised, or the test checks less than it claims
    assertTrue(flagged > 0 && flagged < cases, "flag set in " + flagged + " of " + cases);
  }
}
