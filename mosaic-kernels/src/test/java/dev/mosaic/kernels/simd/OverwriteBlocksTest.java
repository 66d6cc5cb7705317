package dev.mosaic.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The overwriting score blocks (opt-in, {@code -Dmosaic.simd.overwriteScores=true}) give the same
 * bits as zeroing C and accumulating: both start each sum from a zero register and add the
 * products in the same order, so the comparison is exact (depth 0 included: C becomes zero).
 */
class OverwriteBlocksTest {
  private final Random rnd = TestSeed.random();

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 2, 7, 16, 33, 64})
  void overwriteBlocksEqualZeroThenAccumulate(int depth) {
    int l = PanamaSpecies.FLOAT.length();
    for (int vectors : new int[] {4, 2}) {
      int aStride = depth + 3;
      int bStride = vectors * l + 5;
      int cStride = vectors * l + 2;
      float[] a = random(6 * aStride);
      float[] b = random(depth * bStride + vectors * l);
      float[] expected = random(6 * cStride); // garbage: both must overwrite the 6 x vectors*L
      float[] actual = expected.clone();
      for (int r = 0; r < 6; r++) {
        java.util.Arrays.fill(expected, r * cStride, r * cStride + vectors * l, 0f);
      }
      PanamaGemmBlocks.block(6, vectors, a, 1, aStride, depth, b, 2, bStride, expected, 0, cStride);
      if (vectors == 4) {
        PanamaGemmBlocks.overwrite6x4(a, 1, aStride, depth, b, 2, bStride, actual, 0, cStride);
      } else {
        PanamaGemmBlocks.overwrite6x2(a, 1, aStride, depth, b, 2, bStride, actual, 0, cStride);
      }
      assertArrayEquals(expected, actual, "6x" + vectors + " depth " + depth);
    }
  }

  private float[] random(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return v;
  }
}
