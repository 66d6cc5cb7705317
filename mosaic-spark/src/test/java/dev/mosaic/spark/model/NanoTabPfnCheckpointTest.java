package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad checkpoints and bad inputs give one-line errors that name what is wrong. */
class NanoTabPfnCheckpointTest {
  @TempDir Path dir;

  private static Map<String, Tensor> small() {
    return new LinkedHashMap<>(Safetensors.read(NanoTabPfnFixtures.model("small")));
  }

  private Path write(Map<String, Tensor> tensors, Map<String, String> metadata) {
    Path p = dir.resolve("bad.safetensors");
    Safetensors.write(p, tensors, metadata);
    return p;
  }

  private String loadError(Map<String, Tensor> tensors, Map<String, String> metadata,
      Integer heads) {
    Path p = write(tensors, metadata);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> NanoTabPfnCheckpoint.load(p, heads, 1).close());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
    return e.getMessage();
  }

  private static final Map<String, String> TWO_HEADS = Map.of("num_attention_heads", "2");

  @Test
  void shapesAndHeadsComeFromTheFile() {
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("deep"), null, 1)) {
      assertEquals(new NanoTabPfnShape(32, 4, 2, 64, 10), m.shape());
    }
  }

  @Test
  void headsArgumentWinsOverMetadata() {
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("deep"), 8, 1)) {
      assertEquals(8, m.shape().numHeads());
    }
  }

  @Test
  void noHeadsAnywhereIsAnError() {
    String msg = loadError(small(), Map.of(), null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors")
        + " has no __metadata__ num_attention_heads: give the number of heads (--num-heads)", msg);
  }

  @Test
  void headsThatDoNotDivideEIsAnError() {
    String msg = loadError(small(), Map.of("num_attention_heads", "3"), null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + ": numHeads 3 does not divide"
        + " the embedding width 16: expected a divisor of 16", msg);
  }

  @Test
  void nonNumericHeadsMetadataIsAnError() {
    String msg = loadError(small(), Map.of("num_attention_heads", "two"), null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + ": __metadata__"
        + " num_attention_heads must be a positive integer, got 'two'", msg);
  }

  @Test
  void missingTensorIsNamedWithItsShape() {
    Map<String, Tensor> t = small();
    t.remove("transformer_blocks.0.norm2.bias");
    String msg = loadError(t, TWO_HEADS, null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + " is missing tensor"
        + " 'transformer_blocks.0.norm2.bias': expected shape [16], found none", msg);
  }

  @Test
  void missingShapeTensorIsNamed() {
    Map<String, Tensor> t = small();
    t.remove("decoder.linear2.weight");
    String msg = loadError(t, TWO_HEADS, null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + " is missing tensor"
        + " 'decoder.linear2.weight': expected shape [outputs, mlpHidden], found none", msg);
  }

  @Test
  void wronglyShapedTensorIsNamedWithBothShapes() {
    Map<String, Tensor> t = small();
    t.put("transformer_blocks.0.self_attention_between_datapoints.in_proj_weight",
        Tensor.zeros(47, 16));
    String msg = loadError(t, TWO_HEADS, null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + ": tensor"
        + " 'transformer_blocks.0.self_attention_between_datapoints.in_proj_weight' has the wrong"
        + " shape: expected [48, 16], found [47, 16]", msg);
  }

  @Test
  void extraTensorIsNamed() {
    Map<String, Tensor> t = small();
    t.put("decoder.linear3.weight", Tensor.zeros(2, 2));
    String msg = loadError(t, TWO_HEADS, null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + " has an unexpected tensor"
        + " 'decoder.linear3.weight' of shape [2, 2]: expected only nanoTabPFN's tensors"
        + " (E=16, L=1)", msg);
  }

  @Test
  void aBlockWithAGapIsAMissingTensor() {
    Map<String, Tensor> t = small();
    t.put("transformer_blocks.2.norm1.weight", Tensor.zeros(16));
    String msg = loadError(t, TWO_HEADS, null);
    assertEquals("checkpoint " + dir.resolve("bad.safetensors") + " is missing tensor"
        + " 'transformer_blocks.1.self_attention_between_datapoints.in_proj_weight': expected"
        + " shape [48, 16], found none", msg);
  }

  @Test
  void classIdsBeyondTheOutputsAreAnError() {
    Map<String, Tensor> data = NanoTabPfnFixtures.data("small");
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("small"), null,
        1)) {
      float[] y = data.get("y").data().clone();
      y[3] = 5;
      Tensor logits = m.logits(data.get("x"), y);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> m.probabilities(logits, y));
      assertEquals("y_train's largest class id is 5: expected at most 2 (the model has 3"
          + " outputs)", e.getMessage());
    }
  }

  @Test
  void tooManyOrNoLabelsAreAnError() {
    Map<String, Tensor> data = NanoTabPfnFixtures.data("small");
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("small"), null,
        1)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> m.logits(data.get("x"), new float[0]));
      assertEquals("y_train has 0 labels: expected 1..23 (one per train row; x has 23 rows)",
          e.getMessage());
    }
  }

  @Test
  void regressionTargetsGiveLogitsButNoProbabilities() {
    Map<String, Tensor> data = NanoTabPfnFixtures.data("small");
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("small"), null,
        1)) {
      float[] y = data.get("y").data().clone();
      y[0] = 0.5f;
      Tensor logits = m.logits(data.get("x"), y);
      assertEquals(8, logits.dim(0));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> m.probabilities(logits, y));
      assertEquals("y_train must hold class ids (non-negative integers) for probabilities, got"
          + " 0.5", e.getMessage());
    }
  }
}
