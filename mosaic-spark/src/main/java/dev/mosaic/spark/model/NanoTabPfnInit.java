package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Untrained nanoTabPFN weights drawn the way PyTorch initialises a fresh model, from a seed:
 * {@code Linear} weights and biases uniform in ±1/√fan_in (kaiming-uniform with a = √5), the
 * attentions' packed in-projection Xavier-uniform with zero biases, LayerNorm γ = 1, β = 0. For
 * runs without a checkpoint (the demo, tests, benchmarks); the values differ from PyTorch's own
 * generator, the distributions do not. A trained checkpoint replaces them
 * ({@link NanoTabPfnCheckpoint}).
 */
public final class NanoTabPfnInit {
  private NanoTabPfnInit() {}

  /** A {@code state_dict} for {@code shape} under nanoTabPFN's names, in PyTorch's order. */
  public static Map<String, Tensor> seeded(NanoTabPfnShape shape, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (Map.Entry<String, int[]> e : shape.tensorShapes().entrySet()) {
      String name = e.getKey();
      int[] dims = e.getValue();
      float[] v = new float[product(dims)];
      if (name.contains("norm") && name.endsWith(".weight")) {
        java.util.Arrays.fill(v, 1f);
      } else if (name.contains("norm") || name.endsWith("in_proj_bias")
          || name.endsWith("out_proj.bias")) {
        // zeros, as PyTorch's LayerNorm β and MultiheadAttention's biases
      } else if (name.endsWith("in_proj_weight")) {
        // Xavier-uniform over the whole [3E, E] matrix, as nn.MultiheadAttention does
        fill(v, Math.sqrt(6.0 / (dims[0] + dims[1])), rnd);
      } else {
        // nn.Linear: weight and bias uniform in ±1/√fan_in; fan_in is the weight's second dim
        int fanIn = shape.tensorShapes().get(weightOf(name))[1];
        fill(v, 1 / Math.sqrt(fanIn), rnd);
      }
      out.put(name, Tensor.of(v, dims));
    }
    return out;
  }

  private static String weightOf(String name) {
    return name.endsWith(".bias") ? name.substring(0, name.length() - "bias".length()) + "weight"
        : name;
  }

  private static void fill(float[] v, double bound, SplittableRandom rnd) {
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
    }
  }

  private static int product(int[] dims) {
    int n = 1;
    for (int d : dims) {
      n *= d;
    }
    return n;
  }
}
