package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Map;

/** The committed PyTorch fixtures (tools/fixtures/nanotabpfn_fixtures.py writes them). */
final class NanoTabPfnFixtures {
  static final String[] CASES = {"small", "deep", "wide"};

  private NanoTabPfnFixtures() {}

  static Path path(String file) {
    try {
      return Path.of(NanoTabPfnFixtures.class.getResource("/fixtures/nanotabpfn/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }

  static Path model(String name) {
    return path(name + ".model.safetensors");
  }

  static Map<String, Tensor> data(String name) {
    return Safetensors.read(path(name + ".data.safetensors"));
  }

  static Map<String, Tensor> layers() {
    return Safetensors.read(path("layers.safetensors"));
  }
}
