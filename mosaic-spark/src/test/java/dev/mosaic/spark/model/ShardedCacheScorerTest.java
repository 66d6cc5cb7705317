package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.KeyValues;
import dev.mosaic.spark.strategy.ThreadRanks;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The query ring: test rows scored against a train-row cache split over p ranks (real TCP
 * communicators on the loopback, one thread per rank), compared with the uncached model and with
 * PyTorch's logits. The ring merges per-shard partials where the uncached model attends to all
 * keys at once: only the summation order differs, so 1e-5 has a wide margin.
 */
@Timeout(600) // seconds when idle; the shared machine can be slow
class ShardedCacheScorerTest {
  private static final double TOL = 1e-5;

  @ParameterizedTest(name = "{0}: K/V shards {1}, test chunks {2}")
  @CsvSource(delimiter = ';', value = {
      "small; 15; 8", // p = 1: the ring is just the local shard
      "small; 7,8; 5,3",
      "small; 4,5,6; 0,6,2", // a task without test rows still serves its shard
      "deep; 10,3,11; 1,0,12",
      "wide; 9,11; 10,0",
      "wide; 5,5,5,5; 2,2,2,4"})
  void ringLogitsEqualTheUncachedModelAndPyTorch(String name, String kvShards, String chunks)
      throws Exception {
    Map<String, Tensor> data = NanoTabPfnFixtures.data(name);
    Tensor x = data.get("x");
    float[] y = data.get("y").data();
    int nTrain = y.length;
    int[] kvSizes = sizes(kvShards);
    int[] chunkSizes = sizes(chunks);
    int p = kvSizes.length;
    try (NanoTabPfnModel model =
            NanoTabPfnCheckpoint.load(NanoTabPfnFixtures.model(name), null, 1)) {
      TrainRowCache cache =
          TrainRowCache.build(model, CachedScorerTest.rows(x, 0, nTrain), y, 1);
      List<Tensor> perRank = ThreadRanks.run(p, comm -> {
        int r = comm.rank();
        List<KeyValues> shard = new ArrayList<>();
        for (KeyValues kv : cache.blocks()) {
          shard.add(kv.slice(offset(kvSizes, r), kvSizes[r]));
        }
        try (NanoTabPfnModel local = NanoTabPfnModel.fromStateDict(name, model.stateDict(),
                model.shape().numHeads(), null, 1);
            ShardedCacheScorer scorer = new ShardedCacheScorer(local, cache.stats(),
                cache.classes(), shard, comm, 1)) {
          return scorer.logits(
              CachedScorerTest.rows(x, nTrain + offset(chunkSizes, r), chunkSizes[r]));
        }
      });
      int outputs = model.shape().outputs();
      float[] all = new float[(x.dim(0) - nTrain) * outputs];
      for (int r = 0; r < p; r++) {
        System.arraycopy(perRank.get(r).data(), 0, all, offset(chunkSizes, r) * outputs,
            chunkSizes[r] * outputs);
      }
      Tensor logits = Tensor.of(all, x.dim(0) - nTrain, outputs);
      assertClose(logits, model.logits(x, y), name + " vs the uncached model");
      assertClose(logits, data.get("logits"), name + " vs PyTorch");
    }
  }

  private static int[] sizes(String csv) {
    String[] parts = csv.trim().split(",");
    int[] out = new int[parts.length];
    for (int i = 0; i < parts.length; i++) {
      out[i] = Integer.parseInt(parts[i].trim());
    }
    return out;
  }

  private static int offset(int[] sizes, int r) {
    int o = 0;
    for (int i = 0; i < r; i++) {
      o += sizes[i];
    }
    return o;
  }

  private static void assertClose(Tensor actual, Tensor expected, String what) {
    assertArrayEquals(expected.shape(), actual.shape(), what);
    double err = RelativeError.of(actual, expected);
    assertTrue(err < TOL, what + ": relative error " + err);
  }
}
