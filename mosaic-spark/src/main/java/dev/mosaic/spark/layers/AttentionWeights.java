package dev.mosaic.spark.layers;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.TensorNames;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * The four tensors of PyTorch's {@code nn.MultiheadAttention}, under its names, so weights exported
 * from PyTorch load unchanged: {@code in_proj_weight [3E, E]} (rows {@code [q | k | v]}),
 * {@code in_proj_bias [3E]}, {@code out_proj.weight [E, E]}, {@code out_proj.bias [E]}.
 *
 * <p>Grouped-query attention keeps the same packed layout with shorter k and v parts:
 * {@code in_proj_weight [E + 2·G·d, E]} for G K/V heads of {@code d = E/H} ({@link #kvDim}).
 * Hugging Face-style checkpoints with separate {@code q_proj/k_proj/v_proj/o_proj} tensors load
 * into it through {@link SeparateProjections}.
 */
public record AttentionWeights(Tensor inProjWeight, Tensor inProjBias, Tensor outProjWeight,
    Tensor outProjBias) implements java.io.Serializable {

  public static final String IN_PROJ_WEIGHT = "in_proj_weight";
  public static final String IN_PROJ_BIAS = "in_proj_bias";
  public static final String OUT_PROJ_WEIGHT = "out_proj.weight";
  public static final String OUT_PROJ_BIAS = "out_proj.bias";

  /** Checks every shape against {@code embedDim}; the message names the tensor. */
  public AttentionWeights validate(int embedDim, String prefix) {
    return validate(embedDim, embedDim, prefix);
  }

  /**
   * Checks every shape against {@code embedDim} with {@code kvDim} features of k and of v (G·d
   * under grouped-query attention, {@code embedDim} otherwise); the message names the tensor.
   */
  public AttentionWeights validate(int embedDim, int kvDim, String prefix) {
    check(prefix + IN_PROJ_WEIGHT, inProjWeight, embedDim + 2 * kvDim, embedDim);
    check(prefix + IN_PROJ_BIAS, inProjBias, embedDim + 2 * kvDim);
    check(prefix + OUT_PROJ_WEIGHT, outProjWeight, embedDim, embedDim);
    check(prefix + OUT_PROJ_BIAS, outProjBias, embedDim);
    return this;
  }

  /**
   * Features of k (and of v) these weights project to: {@code (rows of in_proj_weight − E)/2}, E
   * from {@code out_proj.weight}; E for multi-head attention, G·d for G K/V heads.
   */
  public int kvDim() {
    int rows = inProjWeight.rank() == 2 ? inProjWeight.dim(0) : -1;
    int embed = outProjWeight.rank() == 2 ? outProjWeight.dim(0) : -1;
    return rows > embed && (rows - embed) % 2 == 0 ? (rows - embed) / 2 : -1;
  }

  private static void check(String name, Tensor t, int... shape) {
    if (!Arrays.equals(t.shape(), shape)) {
      throw new IllegalArgumentException("weight '" + name + "' has shape "
          + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(shape));
    }
  }

  /**
   * Reads the four tensors named {@code prefix + name} from {@code tensors} (for example a
   * safetensors file); a missing one is an error naming it and the first few names there are.
   */
  public static AttentionWeights from(Map<String, Tensor> tensors, String prefix, int embedDim) {
    return new AttentionWeights(get(tensors, prefix + IN_PROJ_WEIGHT),
        get(tensors, prefix + IN_PROJ_BIAS), get(tensors, prefix + OUT_PROJ_WEIGHT),
        get(tensors, prefix + OUT_PROJ_BIAS)).validate(embedDim, prefix);
  }

  private static Tensor get(Map<String, Tensor> tensors, String name) {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new IllegalArgumentException("weight '" + name + "' is missing; the weights hold "
          + TensorNames.list(tensors.keySet()));
    }
    return t;
  }

  /** The tensors under their PyTorch names, ready to be written as safetensors. */
  public Map<String, Tensor> toMap(String prefix) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    m.put(prefix + IN_PROJ_WEIGHT, inProjWeight);
    m.put(prefix + IN_PROJ_BIAS, inProjBias);
    m.put(prefix + OUT_PROJ_WEIGHT, outProjWeight);
    m.put(prefix + OUT_PROJ_BIAS, outProjBias);
    return m;
  }

  /**
   * PyTorch's initialisation, seeded: Xavier-uniform {@code in_proj_weight}, uniform
   * ±1/√E {@code out_proj.weight}, zero biases.
   */
  public static AttentionWeights random(int embedDim, long seed) {
    return random(embedDim, embedDim, seed);
  }

  /** As {@link #random(int, long)} with {@code kvDim} features of k and of v (GQA: G·d). */
  public static AttentionWeights random(int embedDim, int kvDim, long seed) {
    Random rnd = new Random(seed);
    int rows = embedDim + 2 * kvDim;
    float xavier = (float) Math.sqrt(6.0 / (embedDim + rows));
    float linear = (float) (1 / Math.sqrt(embedDim));
    return new AttentionWeights(uniform(rnd, xavier, rows, embedDim), Tensor.zeros(rows),
        uniform(rnd, linear, embedDim, embedDim), Tensor.zeros(embedDim));
  }

  static Tensor uniform(Random rnd, float bound, int... shape) {
    Tensor t = Tensor.zeros(shape);
    float[] d = t.data();
    for (int i = 0; i < d.length; i++) {
      d[i] = (rnd.nextFloat() * 2 - 1) * bound;
    }
    return t;
  }
}
