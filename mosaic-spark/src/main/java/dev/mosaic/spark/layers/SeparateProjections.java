package dev.mosaic.spark.layers;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.TensorNames;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Attention weights in the Hugging Face layout, one tensor per projection:
 * {@code q_proj.weight [E, E]}, {@code k_proj.weight [G·d, E]}, {@code v_proj.weight [G·d, E]},
 * {@code o_proj.weight [E, E]}, each with an optional {@code .bias} (zero when absent), for H
 * query heads of {@code d = E/H} and G K/V heads (grouped-query attention; G = H is multi-head
 * attention, G = 1 multi-query). They load into the packed {@link AttentionWeights} the layer
 * computes with (rows {@code [q | k | v]}), and gradients of the packed form split back into these
 * names.
 */
public final class SeparateProjections {
  public static final String Q = "q_proj";
  public static final String K = "k_proj";
  public static final String V = "v_proj";
  public static final String O = "o_proj";
  public static final String WEIGHT = ".weight";
  public static final String BIAS = ".bias";

  private SeparateProjections() {}

  /** Whether {@code tensors} hold {@code prefix + "q_proj.weight"}: the separate layout. */
  public static boolean present(Map<String, Tensor> tensors, String prefix) {
    return tensors.containsKey(prefix + Q + WEIGHT);
  }

  /**
   * Reads the projections under {@code prefix} for {@code numHeads} query heads and
   * {@code numKvHeads} K/V heads over {@code embedDim} features; a missing weight or a wrong shape
   * is a one-line error naming the tensor, the shape expected and the one found.
   */
  public static AttentionWeights read(Map<String, Tensor> tensors, String prefix, int embedDim,
      int numHeads, int numKvHeads) {
    checkHeads(embedDim, numHeads, numKvHeads);
    int kvDim = numKvHeads * (embedDim / numHeads);
    Tensor q = weight(tensors, prefix + Q, embedDim, embedDim, numHeads, numKvHeads);
    Tensor k = weight(tensors, prefix + K, kvDim, embedDim, numHeads, numKvHeads);
    Tensor v = weight(tensors, prefix + V, kvDim, embedDim, numHeads, numKvHeads);
    Tensor o = weight(tensors, prefix + O, embedDim, embedDim, numHeads, numKvHeads);
    Tensor inBias = concat(bias(tensors, prefix + Q, embedDim), bias(tensors, prefix + K, kvDim),
        bias(tensors, prefix + V, kvDim));
    Tensor inWeight = Tensor.of(concat(q, k, v).data(), embedDim + 2 * kvDim, embedDim);
    return new AttentionWeights(inWeight, inBias, o, bias(tensors, prefix + O, embedDim))
        .validate(embedDim, kvDim, prefix);
  }

  /**
   * The K/V head count the file's {@code k_proj.weight} implies: its rows over {@code d = E/H}
   * (for a layer given separate weights without a K/V head count).
   */
  public static int kvHeadsOf(Map<String, Tensor> tensors, String prefix, int embedDim,
      int numHeads) {
    Tensor k = tensors.get(prefix + K + WEIGHT);
    int d = embedDim / Math.max(1, numHeads);
    if (k == null || k.rank() != 2 || d == 0 || k.dim(0) % d != 0 || k.dim(0) == 0) {
      return numHeads; // read() then reports what is wrong with it
    }
    return k.dim(0) / d;
  }

  /**
   * {@code numKvHeads} divides {@code numHeads}, which divides {@code embedDim}; the message names
   * the argument.
   */
  public static void checkHeads(int embedDim, int numHeads, int numKvHeads) {
    if (numHeads < 1 || embedDim % numHeads != 0) {
      throw new IllegalArgumentException("numHeads " + numHeads + " must be positive and divide"
          + " embedDim " + embedDim);
    }
    if (numKvHeads < 1 || numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException("numKvHeads " + numKvHeads + " must be positive and"
          + " divide numHeads " + numHeads + " (each K/V head serves numHeads/numKvHeads query"
          + " heads)");
    }
  }

  /**
   * Gradients under the packed names ({@code in_proj_weight}, {@code in_proj_bias},
   * {@code out_proj.*}) renamed and split into the separate ones, in the file's order; other
   * entries are kept as they are.
   */
  public static Map<String, Tensor> split(Map<String, Tensor> packed, int embedDim, int kvDim) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (Map.Entry<String, Tensor> e : packed.entrySet()) {
      Tensor t = e.getValue();
      switch (e.getKey()) {
        case AttentionWeights.IN_PROJ_WEIGHT -> {
          out.put(Q + WEIGHT, rows(t, 0, embedDim));
          out.put(K + WEIGHT, rows(t, embedDim, kvDim));
          out.put(V + WEIGHT, rows(t, embedDim + kvDim, kvDim));
        }
        case AttentionWeights.IN_PROJ_BIAS -> {
          out.put(Q + BIAS, rows(t, 0, embedDim));
          out.put(K + BIAS, rows(t, embedDim, kvDim));
          out.put(V + BIAS, rows(t, embedDim + kvDim, kvDim));
        }
        case AttentionWeights.OUT_PROJ_WEIGHT -> out.put(O + WEIGHT, t);
        case AttentionWeights.OUT_PROJ_BIAS -> out.put(O + BIAS, t);
        default -> out.put(e.getKey(), t);
      }
    }
    return out;
  }

  /** Rows {@code [from, from + count)} of a matrix or vector, copied. */
  private static Tensor rows(Tensor t, int from, int count) {
    int width = t.rank() == 2 ? t.dim(1) : 1;
    float[] d = Arrays.copyOfRange(t.data(), from * width, (from + count) * width);
    return t.rank() == 2 ? Tensor.of(d, count, width) : Tensor.of(d, count);
  }

  private static Tensor weight(Map<String, Tensor> tensors, String name, int rows, int cols,
      int heads, int kvHeads) {
    Tensor t = tensors.get(name + WEIGHT);
    if (t == null) {
      throw new IllegalArgumentException("weight '" + name + WEIGHT + "' is missing; the weights"
          + " hold " + TensorNames.list(tensors.keySet()));
    }
    if (!Arrays.equals(t.shape(), new int[] {rows, cols})) {
      throw new IllegalArgumentException("weight '" + name + WEIGHT + "' has shape "
          + Arrays.toString(t.shape()) + ", expected [" + rows + ", " + cols + "] for embed "
          + cols + ", " + heads + " heads and " + kvHeads + " K/V heads");
    }
    return t;
  }

  private static Tensor bias(Map<String, Tensor> tensors, String name, int size) {
    Tensor t = tensors.get(name + BIAS);
    if (t == null) {
      return Tensor.zeros(size);
    }
    if (!Arrays.equals(t.shape(), new int[] {size})) {
      throw new IllegalArgumentException("weight '" + name + BIAS + "' has shape "
          + Arrays.toString(t.shape()) + ", expected [" + size + "]");
    }
    return t;
  }

  private static Tensor concat(Tensor... parts) {
    int total = 0;
    for (Tensor p : parts) {
      total += p.size();
    }
    float[] d = new float[total];
    int at = 0;
    for (Tensor p : parts) {
      System.arraycopy(p.data(), 0, d, at, p.size());
      at += p.size();
    }
    return Tensor.of(d, total);
  }
}
