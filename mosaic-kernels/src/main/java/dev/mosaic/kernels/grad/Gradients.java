package dev.mosaic.kernels.grad;

import dev.mosaic.kernels.Tensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a layer's backward returns: the gradient with respect to its input, and the gradients of
 * its parameters under PyTorch's names ({@code weight}, {@code bias}), so an optimizer and a
 * checkpoint see one map. A model prefixes the names with the layer's path
 * ({@code transformer_blocks.0.linear1.weight}).
 */
public record Gradients(float[] input, Map<String, Tensor> parameters) {

  public Gradients {
    parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
  }

  /** This layer's parameter gradients with {@code prefix + "."} before each name. */
  public Map<String, Tensor> parameters(String prefix) {
    Map<String, Tensor> named = new LinkedHashMap<>();
    parameters.forEach((name, g) -> named.put(prefix + "." + name, g));
    return named;
  }
}
