package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.spark.layers.AttentionActivations;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.layers.MultiAxisAttention2D;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code mosaic attention --grad-output G --grads-output GR}: reads {@code dy} from G, writes to
 * GR {@code dx} and the gradients of {@code in_proj_weight}, {@code in_proj_bias},
 * {@code out_proj.weight}, {@code out_proj.bias}, each the gradient of {@code sum(y·dy)} (the
 * contract other tools call; the names are PyTorch's, whatever {@code --weights-prefix} is).
 */
final class AttentionGradients {
  /** What GR holds, in this order. */
  static final List<String> NAMES = List.of("dx", AttentionWeights.IN_PROJ_WEIGHT,
      AttentionWeights.IN_PROJ_BIAS, AttentionWeights.OUT_PROJ_WEIGHT,
      AttentionWeights.OUT_PROJ_BIAS);

  private final Path gradOutput;
  private final Path gradsOutput;

  private AttentionGradients(Path gradOutput, Path gradsOutput) {
    this.gradOutput = gradOutput;
    this.gradsOutput = gradsOutput;
  }

  /** The two flags, both or neither (null then); a GR that cannot hold five tensors fails now. */
  static AttentionGradients parse(Flags f) {
    if (!f.has("grad-output") && !f.has("grads-output")) {
      return null;
    }
    if (!f.has("grad-output") || !f.has("grads-output")) {
      throw new UserError("--grad-output G (dy) and --grads-output GR (the gradients) go"
          + " together; got only " + (f.has("grad-output") ? "--grad-output" : "--grads-output"));
    }
    Path g = AttentionCommand.existing(f.string("grad-output", ""), "--grad-output");
    Path gr = Path.of(f.string("grads-output", ""));
    if (TensorFiles.Format.of(gr) == TensorFiles.Format.NPY) {
      throw new UserError("--grads-output " + gr + ": the gradients are " + NAMES.size()
          + " named tensors (" + String.join(", ", NAMES) + "); give a .npz or safetensors"
          + " file, not one .npy array");
    }
    return new AttentionGradients(g, gr);
  }

  /** Tensor {@code dy} of G, which must have y's shape (x's). */
  Tensor readDy(int[] yShape) {
    Tensor dy = TensorFiles.read(gradOutput, "dy");
    if (!Arrays.equals(dy.shape(), yShape)) {
      throw new UserError("tensor 'dy' in " + gradOutput + " must have y's shape "
          + Arrays.toString(yShape) + ", got " + Arrays.toString(dy.shape()));
    }
    return dy;
  }

  /** y and the gradients of one layer run in this JVM (its strategy does the backward). */
  static Map.Entry<Tensor, Map<String, Tensor>> local(MultiAxisAttention layer, Tensor x,
      Tensor dy, long keyLimit) {
    AttentionActivations a = layer.forwardForBackward(x, keyLimit);
    Gradients g = layer.backward(a, dy);
    return Map.entry(a.output(), named(Tensor.of(g.input(), x.shape()), g.parameters()));
  }

  /** The two-axis flattening of dy (as x's), or dy itself for one axis. */
  static Tensor flatten(Tensor dy, MultiAxisAttention2D.Flattened flatX, int axis1, int axis2) {
    return flatX == null ? dy : MultiAxisAttention2D.Flattened.of(dy, axis1, axis2).tensor();
  }

  /** dx first, then the four weight gradients, in GR's order. */
  static Map<String, Tensor> named(Tensor dx, Map<String, Tensor> parameters) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    m.put("dx", dx);
    for (String name : NAMES.subList(1, NAMES.size())) {
      m.put(name, parameters.get(name));
    }
    return m;
  }

  void write(Map<String, Tensor> grads) {
    TensorFiles.write(gradsOutput, grads);
  }

  Path gradsOutput() {
    return gradsOutput;
  }
}
