package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.test.TestSeed;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** One packed call over many sequences equals the layer run on each sequence alone (1e-5). */
class PackedLayerTest {
  private final Random rnd = TestSeed.random();

  @Test
  void vectorsCausal() {
    check(new int[] {1, 2, 17, 63, 64, 65, 0, 130, 3}, 1, 16, 2, true, Long.MAX_VALUE);
  }

  @Test
  void vectorsWithKeyBound() {
    check(new int[] {5, 1, 40, 77, 2}, 1, 24, 3, false, 20);
  }

  @Test
  void tableRowsWithFeatures() {
    check(new int[] {1, 4, 9, 30, 70}, 3, 8, 4, false, Long.MAX_VALUE);
    check(new int[] {2, 66, 1}, 2, 8, 2, true, 50);
  }

  private void check(int[] lengths, int features, int e, int heads, boolean causal,
      long keyLimit) {
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    int[] cu = VarlenSequences.offsets(lengths);
    int rowFloats = features * e;
    float[] x = Tensor.randn(rnd, 1f, cu[lengths.length] * rowFloats).data();
    float[] y;
    try (PackedLayer packed = new PackedLayer(w, e, heads, heads, causal, keyLimit,
        new CpuFlashAttention(2), 2)) {
      y = packed.forward(x, cu, features);
    }
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, heads, 0).weights(w)
        .causal(causal).threads(2).build()) {
      for (int s = 0; s < lengths.length; s++) {
        if (lengths[s] == 0) {
          continue;
        }
        int[] shape = features == 1 ? new int[] {lengths[s], e}
            : new int[] {lengths[s], features, e};
        float[] xs = Arrays.copyOfRange(x, cu[s] * rowFloats, cu[s + 1] * rowFloats);
        Tensor expected = layer.forward(Tensor.of(xs, shape), keyLimit);
        Tensor actual = Tensor.of(Arrays.copyOfRange(y, cu[s] * rowFloats, cu[s + 1] * rowFloats),
            shape);
        double err = RelativeError.of(actual, expected);
        assertTrue(err < 1e-5, "sequence " + s + " of " + lengths[s] + ": relative error " + err);
      }
    }
  }
}
