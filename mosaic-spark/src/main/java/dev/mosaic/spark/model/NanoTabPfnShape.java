package dev.mosaic.spark.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The sizes of a nanoTabPFN model, and from them the name and shape of every tensor of its
 * PyTorch {@code state_dict}, in PyTorch's order.
 *
 * @param embedDim E, the width of every cell
 * @param numHeads heads of both attentions (E must divide by it)
 * @param layers L, the number of transformer blocks
 * @param mlpHidden the hidden width of the blocks' MLP and of the decoder
 * @param outputs the decoder's logits per test row
 */
public record NanoTabPfnShape(int embedDim, int numHeads, int layers, int mlpHidden,
    int outputs) implements java.io.Serializable {
  public static final String FEATURE_ENCODER = "feature_encoder.linear_layer.";
  public static final String TARGET_ENCODER = "target_encoder.linear_layer.";
  public static final String DECODER = "decoder.";
  public static final String ROW_ATTENTION = "self_attention_between_datapoints.";
  public static final String CELL_ATTENTION = "self_attention_between_features.";

  public NanoTabPfnShape {
    positive("embedDim", embedDim);
    positive("numHeads", numHeads);
    positive("mlpHidden", mlpHidden);
    positive("outputs", outputs);
    if (layers < 0) {
      throw new IllegalArgumentException("layers must be >= 0, got " + layers);
    }
    if (embedDim % numHeads != 0) {
      throw new IllegalArgumentException("numHeads " + numHeads + " does not divide the embedding"
          + " width " + embedDim + ": expected a divisor of " + embedDim);
    }
  }

  private static void positive(String name, int v) {
    if (v <= 0) {
      throw new IllegalArgumentException(name + " must be positive, got " + v);
    }
  }

  public static String block(int i) {
    return "transformer_blocks." + i + ".";
  }

  /** Every tensor name with its shape, in the order nanoTabPFN's {@code state_dict} has them. */
  public Map<String, int[]> tensorShapes() {
    int e = embedDim;
    Map<String, int[]> m = new LinkedHashMap<>();
    m.put(FEATURE_ENCODER + "weight", new int[] {e, 1});
    m.put(FEATURE_ENCODER + "bias", new int[] {e});
    m.put(TARGET_ENCODER + "weight", new int[] {e, 1});
    m.put(TARGET_ENCODER + "bias", new int[] {e});
    for (int i = 0; i < layers; i++) {
      String b = block(i);
      for (String att : new String[] {ROW_ATTENTION, CELL_ATTENTION}) {
        m.put(b + att + "in_proj_weight", new int[] {3 * e, e});
        m.put(b + att + "in_proj_bias", new int[] {3 * e});
        m.put(b + att + "out_proj.weight", new int[] {e, e});
        m.put(b + att + "out_proj.bias", new int[] {e});
      }
      m.put(b + "linear1.weight", new int[] {mlpHidden, e});
      m.put(b + "linear1.bias", new int[] {mlpHidden});
      m.put(b + "linear2.weight", new int[] {e, mlpHidden});
      m.put(b + "linear2.bias", new int[] {e});
      for (String norm : new String[] {"norm1.", "norm2.", "norm3."}) {
        m.put(b + norm + "weight", new int[] {e});
        m.put(b + norm + "bias", new int[] {e});
      }
    }
    m.put(DECODER + "linear1.weight", new int[] {mlpHidden, e});
    m.put(DECODER + "linear1.bias", new int[] {mlpHidden});
    m.put(DECODER + "linear2.weight", new int[] {outputs, mlpHidden});
    m.put(DECODER + "linear2.bias", new int[] {outputs});
    return m;
  }
}
