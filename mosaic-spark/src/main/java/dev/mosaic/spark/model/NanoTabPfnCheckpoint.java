package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * nanoTabPFN checkpoints: a PyTorch {@code state_dict} saved with safetensors under nanoTabPFN's
 * names. E, L, the MLP width and the outputs come from the tensor shapes; the heads (which no
 * shape shows) from an explicit argument or else the {@code __metadata__} key
 * {@value #HEADS_KEY}. Any missing, extra or wrongly shaped tensor is a one-line error naming it.
 */
public final class NanoTabPfnCheckpoint {
  public static final String HEADS_KEY = "num_attention_heads";
  private static final Pattern BLOCK = Pattern.compile("transformer_blocks\\.(\\d+)\\..*");

  private NanoTabPfnCheckpoint() {}

  /**
   * Reads and checks {@code file}.
   *
   * @param numHeads wins over the file's metadata; null to use the metadata
   */
  public static NanoTabPfnModel load(Path file, Integer numHeads, int threads) {
    Map<String, Tensor> tensors = Safetensors.read(file);
    int heads = heads(file, numHeads, Safetensors.metadata(file));
    return new NanoTabPfnModel(check(file.toString(), tensors, heads), tensors, null, threads);
  }

  /** Writes {@code model} so that it loads back here and into nanoTabPFN's PyTorch model. */
  public static void save(NanoTabPfnModel model, Path file) {
    Safetensors.write(file, model.stateDict(),
        Map.of(HEADS_KEY, Integer.toString(model.shape().numHeads())));
  }

  static int heads(Path file, Integer numHeads, Map<String, String> metadata) {
    if (numHeads != null) {
      return numHeads;
    }
    String v = metadata.get(HEADS_KEY);
    if (v == null) {
      throw new IllegalArgumentException("checkpoint " + file + " has no __metadata__ "
          + HEADS_KEY + ": give the number of heads (--num-heads)");
    }
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("checkpoint " + file + ": __metadata__ " + HEADS_KEY
          + " must be a positive integer, got '" + v + "'");
    }
  }

  /**
   * The model's sizes inferred from {@code tensors}, after checking that it holds exactly the
   * tensors of that shape; {@code source} names the checkpoint in errors.
   */
  public static NanoTabPfnShape check(String source, Map<String, Tensor> tensors, int numHeads) {
    int e = dim(source, tensors, NanoTabPfnShape.FEATURE_ENCODER + "weight", 0, "[E, 1]");
    int hidden = dim(source, tensors, NanoTabPfnShape.DECODER + "linear1.weight", 0,
        "[mlpHidden, E]");
    int outputs = dim(source, tensors, NanoTabPfnShape.DECODER + "linear2.weight", 0,
        "[outputs, mlpHidden]");
    int layers = 0;
    for (String name : tensors.keySet()) {
      Matcher m = BLOCK.matcher(name);
      if (m.matches()) {
        layers = Math.max(layers, Integer.parseInt(m.group(1)) + 1);
      }
    }
    NanoTabPfnShape shape;
    try {
      shape = new NanoTabPfnShape(e, numHeads, layers, hidden, outputs);
    } catch (IllegalArgumentException ex) {
      throw new IllegalArgumentException("checkpoint " + source + ": " + ex.getMessage());
    }
    Map<String, int[]> expected = shape.tensorShapes();
    for (Map.Entry<String, int[]> x : expected.entrySet()) {
      Tensor t = tensors.get(x.getKey());
      if (t == null) {
        throw new IllegalArgumentException("checkpoint " + source + " is missing tensor '"
            + x.getKey() + "': expected shape " + Arrays.toString(x.getValue()) + ", found none");
      }
      if (!Arrays.equals(t.shape(), x.getValue())) {
        throw new IllegalArgumentException("checkpoint " + source + ": tensor '" + x.getKey()
            + "' has the wrong shape: expected " + Arrays.toString(x.getValue()) + ", found "
            + Arrays.toString(t.shape()));
      }
    }
    for (String name : new TreeSet<>(tensors.keySet())) {
      if (!expected.containsKey(name)) {
        throw new IllegalArgumentException("checkpoint " + source + " has an unexpected tensor '"
            + name + "' of shape " + Arrays.toString(tensors.get(name).shape())
            + ": expected only nanoTabPFN's tensors (E=" + e + ", L=" + layers + ")");
      }
    }
    return shape;
  }

  private static int dim(String source, Map<String, Tensor> tensors, String name, int axis,
      String expected) {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new IllegalArgumentException("checkpoint " + source + " is missing tensor '" + name
          + "': expected shape " + expected + ", found none");
    }
    if (t.rank() != 2 || t.dim(axis) == 0) {
      throw new IllegalArgumentException("checkpoint " + source + ": tensor '" + name
          + "' has the wrong shape: expected " + expected + ", found "
          + Arrays.toString(t.shape()));
    }
    return t.dim(axis);
  }

  /** A copy in PyTorch's order, for writing. */
  static Map<String, Tensor> ordered(NanoTabPfnShape shape, Map<String, Tensor> tensors) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    for (String name : shape.tensorShapes().keySet()) {
      m.put(name, tensors.get(name));
    }
    return m;
  }
}
