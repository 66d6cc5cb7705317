package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.prior.Prior;
import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.prior.PriorSizes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped model: packed into the jar from models/ unchanged, found in mosaic.home first, a
 * placeholder flagged, and a one-line error when it is nowhere. No accuracy here: the file may be
 * the untrained placeholder (the trained model's accuracy has its own test).
 */
class ShippedModelTest {
  /** The repository's models/ folder (surefire runs in the module's folder). */
  private static final Path REPO_FILE = Path.of("..", "models", ShippedModel.FILE_NAME);

  @TempDir Path dir;

  @Test
  void theClasspathCopyIsTheRepositoryFileAndItRuns() {
    ShippedModel.Loaded m = ShippedModel.load(null, ShippedModel.class);
    assertEquals("classpath:" + ShippedModel.RESOURCE.substring(1), m.source());
    Map<String, Tensor> file = Safetensors.read(REPO_FILE);
    assertEquals(file.keySet(), m.stateDict().keySet());
    for (Map.Entry<String, Tensor> e : file.entrySet()) {
      assertArrayEquals(e.getValue().shape(), m.stateDict().get(e.getKey()).shape(), e.getKey());
      assertArrayEquals(e.getValue().data(), m.stateDict().get(e.getKey()).data(), 0f,
          e.getKey());
    }
    assertEquals(Safetensors.metadata(REPO_FILE), m.metadata());
    // A prior table through the loaded weights: probabilities of every test row sum to 1.
    PriorDataset d = new Prior(new PriorSizes(60, 60, 5, 3), 7).sample(0);
    try (NanoTabPfnModel model = NanoTabPfnModel.fromStateDict(m.source(), m.stateDict(),
        m.numHeads(), null, 1)) {
      Tensor p = model.probabilities(model.logits(d.xTensor(), d.yTrain()), d.yTrain());
      assertEquals(d.rows() - d.nTrain(), p.dim(0));
      for (int r = 0; r < p.dim(0); r++) {
        double sum = 0;
        for (int c = 0; c < p.dim(1); c++) {
          float v = p.data()[r * p.dim(1) + c];
          assertTrue(v >= 0 && v <= 1, "probability " + v);
          sum += v;
        }
        // fp32 softmax of <= 10 terms: the sum is 1 within a few ulps
        assertEquals(1.0, sum, 1e-5, "row " + r);
      }
    }
  }

  @Test
  void mosaicHomeWinsOverTheClasspathAndAPlaceholderSaysSo() throws Exception {
    NanoTabPfnShape shape = new NanoTabPfnShape(8, 2, 1, 16, 3);
    Files.createDirectories(dir.resolve("models"));
    Path file = dir.resolve("models").resolve(ShippedModel.FILE_NAME);
    Safetensors.write(file, NanoTabPfnInit.seeded(shape, 5),
        Map.of("num_attention_heads", "2", "mosaic_step", "17"));
    ShippedModel.Loaded trained = ShippedModel.load(dir.toString(), ShippedModel.class);
    assertEquals(file.toString(), trained.source());
    assertEquals(shape, trained.shape());
    assertFalse(trained.placeholder());
    assertEquals("shipped model mosaic-tabpfn.safetensors (E 8, 2 heads, 1 blocks, MLP 16,"
        + " 3 outputs, step 17) from " + file, trained.description());

    Safetensors.write(file, NanoTabPfnInit.seeded(shape, 5),
        Map.of("num_attention_heads", "2", "mosaic_step", "0", "mosaic_placeholder", "true"));
    ShippedModel.Loaded placeholder = ShippedModel.load(dir.toString(), ShippedModel.class);
    assertTrue(placeholder.placeholder());
    assertTrue(placeholder.description().endsWith("; PLACEHOLDER: untrained weights"),
        placeholder.description());
  }

  @Test
  void aHomeWithoutTheFileFallsBackToTheClasspath() {
    ShippedModel.Loaded m = ShippedModel.load(dir.toString(), ShippedModel.class);
    assertTrue(m.source().startsWith("classpath:"), m.source());
  }

  @Test
  void missingEverywhereIsOneLineError() {
    // String's loader (java.base) has no dev/mosaic/models/: as a jar built without models/.
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> ShippedModel.load(dir.toString(), String.class));
    assertEquals("the shipped model mosaic-tabpfn.safetensors is missing: expected it on the"
        + " classpath at dev/mosaic/models/mosaic-tabpfn.safetensors or at "
        + dir.resolve("models").resolve("mosaic-tabpfn.safetensors") + " (rebuild mosaic-spark,"
        + " which packs models/ into its jar), or give a checkpoint file instead", e.getMessage());
  }

  @Test
  void aBrokenShippedFileNamesItself() throws Exception {
    Files.createDirectories(dir.resolve("models"));
    Path file = dir.resolve("models").resolve(ShippedModel.FILE_NAME);
    Safetensors.write(file, NanoTabPfnInit.seeded(new NanoTabPfnShape(8, 2, 1, 16, 3), 5),
        Map.of());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ShippedModel.load(dir.toString(), ShippedModel.class));
    assertEquals("checkpoint " + file + " has no __metadata__ num_attention_heads: give the"
        + " number of heads (--num-heads)", e.getMessage());
  }
}
