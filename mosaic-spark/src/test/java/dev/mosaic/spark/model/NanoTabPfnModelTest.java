package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** nanoTabPFN forward against PyTorch's own logits and probabilities (committed fixtures). */
class NanoTabPfnModelTest {
  /** fp32 throughout; the fixtures drift < 3e-6 from a float64 run of the same weights. */
  private static final double TOL = 1e-5;

  @ParameterizedTest
  @ValueSource(strings = {"small", "deep", "wide"})
  void logitsAndProbabilitiesEqualPyTorch(String name) {
    Map<String, Tensor> data = NanoTabPfnFixtures.data(name);
    float[] y = data.get("y").data();
    try (NanoTabPfnModel model =
        NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model(name), null, 2)) {
      Tensor logits = model.logits(data.get("x"), y);
      Tensor expected = data.get("logits");
      assertArrayEquals(expected.shape(), logits.shape());
      double err = RelativeError.of(logits, expected);
      assertTrue(err < TOL, name + " logits: relative error " + err);
      Tensor probs = model.probabilities(logits, y);
      assertArrayEquals(data.get("probabilities").shape(), probs.shape());
      double perr = RelativeError.of(probs, data.get("probabilities"));
      assertTrue(perr < TOL, name + " probabilities: relative error " + perr);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"small", "deep", "wide"})
  void savedCheckpointLoadsBackUnchanged(String name, @TempDir Path dir) {
    Path out = dir.resolve(name + ".safetensors");
    Map<String, Tensor> data = NanoTabPfnFixtures.data(name);
    try (NanoTabPfnModel model =
        NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model(name), null, 1)) {
      NanoTabPfnCheckpoint.save(model, out);
      Map<String, Tensor> original = Safetensors.read(NanoTabPfnFixtures.model(name));
      Map<String, Tensor> written = Safetensors.read(out);
      assertEquals(original.keySet(), written.keySet());
      for (String t : original.keySet()) {
        assertArrayEquals(original.get(t).data(), written.get(t).data(), 0f, t);
      }
      assertEquals(Integer.toString(model.shape().numHeads()),
          Safetensors.metadata(out).get(NanoTabPfnCheckpoint.HEADS_KEY));
      try (NanoTabPfnModel back = NanoTabPfnCheckpoint.load(out, null, 1)) {
        assertEquals(model.shape(), back.shape());
        float[] y = data.get("y").data();
        assertArrayEquals(model.logits(data.get("x"), y).data(),
            back.logits(data.get("x"), y).data(), 0f);
      }
    }
  }
}
