package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.KeyValues;
import dev.mosaic.test.TestSeed;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Fit once, score many: test rows scored against cached train-row keys/values, against the
 * uncached model and against PyTorch's logits. The cached path runs the same kernels on the same
 * projections as the uncached one (only summation order differs), so 1e-5 has a wide margin.
 */
class CachedScorerTest {
  private static final double TOL = 1e-5;

  @ParameterizedTest
  @ValueSource(strings = {"small", "deep", "wide"})
  void cachedLogitsEqualTheUncachedModelAndPyTorch(String name) {
    Map<String, Tensor> data = NanoTabPfnFixtures.data(name);
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    try (NanoTabPfnModel model =
            NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model(name), null, 2)) {
      TrainRowCache cache = TrainRowCache.build(model, rows(x, 0, y.length), y, 2);
      assertEquals(model.shape().layers(), cache.blocks().size());
      try (CachedScorer scorer = new CachedScorer(model, cache, 2)) {
        Tensor logits = scorer.logits(rows(x, y.length, x.dim(0) - y.length));
        assertClose(logits, model.logits(x, y), name + " vs the uncached model");
        assertClose(logits, data.get("logits"), name + " vs PyTorch");
        assertClose(scorer.probabilities(logits), data.get("probabilities"),
            name + " probabilities vs PyTorch");
      }
    }
  }

  @Test
  void anyBatchingOfTestRowsGivesTheSameLogits() {
    Map<String, Tensor> data = NanoTabPfnFixtures.data("deep");
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTest = x.dim(0) - y.length;
    try (NanoTabPfnModel model =
            NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("deep"), null, 1);
        CachedScorer scorer =
            new CachedScorer(model, TrainRowCache.build(model, rows(x, 0, y.length), y, 1), 1)) {
      Tensor all = scorer.logits(rows(x, y.length, nTest));
      int outputs = all.dim(1);
      for (int r = 0; r < nTest; r++) {
        Tensor one = scorer.logits(rows(x, y.length + r, 1));
        assertClose(one, Tensor.of(Arrays.copyOfRange(all.data(), r * outputs,
            (r + 1) * outputs), 1, outputs), "test row " + r + " alone");
      }
      assertEquals(0, scorer.logits(rows(x, y.length, 0)).dim(0));
    }
  }

  @Test
  void shardsJoinIntoTheWholeCache() {
    Map<String, Tensor> data = NanoTabPfnFixtures.data("wide");
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    try (NanoTabPfnModel model =
            NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model("wide"), null, 1)) {
      TrainRowCache whole = TrainRowCache.build(model, rows(x, 0, nTrain), y, 1);
      // uneven shards (one of a single row) cut from the whole cache, then rejoined
      List<List<KeyValues>> shards = new ArrayList<>();
      int[] cuts = {0, 7, 8, nTrain};
      for (int s = 0; s + 1 < cuts.length; s++) {
        List<KeyValues> blocks = new ArrayList<>();
        for (KeyValues kv : whole.blocks()) {
          blocks.add(kv.slice(cuts[s], cuts[s + 1] - cuts[s]));
        }
        shards.add(blocks);
      }
      TrainRowCache joined = TrainRowCache.of(whole.stats(), whole.classes(), shards);
      for (int i = 0; i < whole.blocks().size(); i++) {
        assertArrayEquals(whole.blocks().get(i).data(), joined.blocks().get(i).data(), 0f);
      }
    }
  }

  @Test
  void cacheSurvivesSafetensorsAndJavaSerialization(@TempDir Path dir) throws Exception {
    Random rnd = TestSeed.random();
    NanoTabPfnShape shape = new NanoTabPfnShape(16, 2, 2, 32, 4);
    int rows = 30;
    int nTrain = 21;
    float[] xs = new float[rows * 3];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = (float) rnd.nextGaussian();
    }
    float[] y = new float[nTrain];
    for (int i = 0; i < nTrain; i++) {
      y[i] = rnd.nextInt(3);
    }
    Tensor x = Tensor.of(xs, rows, 3);
    try (NanoTabPfnModel model = NanoTabPfnModel.fromStateDict("seeded",
        NanoTabPfnInit.seeded(shape, rnd.nextLong()), 2, null, 1)) {
      TrainRowCache cache = TrainRowCache.build(model, rows(x, 0, nTrain), y, 1);
      Path file = dir.resolve("cache.safetensors");
      cache.save(file);
      TrainRowCache back = TrainRowCache.load(file);
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
        out.writeObject(cache);
      }
      TrainRowCache shipped;
      try (ObjectInputStream in =
          new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
        shipped = (TrainRowCache) in.readObject();
      }
      Tensor expected = model.logits(x, y);
      for (TrainRowCache c : List.of(back, shipped)) {
        assertEquals(cache.nTrain(), c.nTrain());
        assertEquals(cache.classes(), c.classes());
        assertArrayEquals(cache.mean(), c.mean(), 0f);
        try (CachedScorer scorer = new CachedScorer(model, c, 1)) {
          assertArrayEquals(new CachedScorer(model, cache, 1).logits(rows(x, nTrain, 9)).data(),
              scorer.logits(rows(x, nTrain, 9)).data(), 0f);
          assertClose(scorer.logits(rows(x, nTrain, 9)), expected, "reloaded cache");
        }
      }
    }
  }

  @Test
  void mismatchesAreOneLineErrors() {
    NanoTabPfnShape shape = new NanoTabPfnShape(8, 2, 1, 16, 2);
    Tensor x = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
    float[] y = {0, 1, 0.5f};
    try (NanoTabPfnModel model =
            NanoTabPfnModel.fromStateDict("s", NanoTabPfnInit.seeded(shape, 1), 2, null, 1);
        NanoTabPfnModel deeper = NanoTabPfnModel.fromStateDict("s",
            NanoTabPfnInit.seeded(new NanoTabPfnShape(8, 2, 2, 16, 2), 1), 2, null, 1)) {
      TrainRowCache cache = TrainRowCache.build(model, x, y, 1);
      assertEquals(0, cache.classes(), "0.5 is a regression target, not a class id");
      assertEquals("the cache holds 1 blocks, the model has 2: expected the same",
          assertThrows(IllegalArgumentException.class, () -> new CachedScorer(deeper, cache, 1))
              .getMessage());
      try (CachedScorer scorer = new CachedScorer(model, cache, 1)) {
        assertEquals("xTest must be [rows, 2] (the train rows' features), got Tensor[1, 3]",
            assertThrows(IllegalArgumentException.class,
                () -> scorer.logits(Tensor.of(new float[3], 1, 3))).getMessage());
      }
    }
  }

  static Tensor rows(Tensor x, int from, int count) {
    int f = x.dim(1);
    return Tensor.of(Arrays.copyOfRange(x.data(), from * f, (from + count) * f), count, f);
  }

  private static void assertClose(Tensor actual, Tensor expected, String what) {
    assertArrayEquals(expected.shape(), actual.shape(), what);
    double err = RelativeError.of(actual, expected);
    assertTrue(err < TOL, what + ": relative error " + err);
  }
}
