package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.cli.CliRun.Result;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Map;

/** Shared by the predict tests: the one-line error check and the PyTorch fixtures. */
final class PredictCli {
  /** fp32 throughout; the fixtures drift < 3e-6 from a float64 run of the same weights. */
  static final double TOL = 1e-5;

  private PredictCli() {}

  /** Exit code 2 and one line on stderr that starts as predict's errors do and holds each part. */
  static void assertUsageError(String[] args, String... parts) {
    Result r = run(args);
    assertEquals(2, r.code(), r.err() + r.out());
    assertEquals(1, r.errLines().size(), r.err());
    String line = r.errLines().get(0);
    assertTrue(line.startsWith("mosaic predict: error: "), line);
    for (String p : parts) {
      assertTrue(line.contains(p), "expected '" + p + "' in: " + line);
    }
  }

  /** A committed fixture written by tools/fixtures/nanotabpfn_fixtures.py. */
  static Path fixture(String file) {
    try {
      return Path.of(PredictCli.class.getResource("/fixtures/nanotabpfn/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }

  static Path model(String name) {
    return fixture(name + ".model.safetensors");
  }

  /** x, y and PyTorch's logits and probabilities. */
  static Map<String, Tensor> data(String name) {
    return Safetensors.read(fixture(name + ".data.safetensors"));
  }

  static void assertClose(Tensor expected, float[] actual, String what) {
    double err = RelativeError.of(Tensor.of(actual, expected.shape()), expected);
    assertTrue(err < TOL, what + ": relative error " + err);
  }
}
