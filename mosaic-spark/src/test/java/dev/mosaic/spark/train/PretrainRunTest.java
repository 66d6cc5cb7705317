package dev.mosaic.spark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.prior.PriorSizes;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.TestSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pretraining over real barrier stages of a local Spark: resume, stop, refusals. */
class PretrainRunTest {
  /** A model and tables small enough for a step in milliseconds. */
  static PretrainSettings tiny(long steps, int checkpointEvery) {
    NanoTabPfnShape shape = new NanoTabPfnShape(8, 2, 1, 16, 4);
    return new PretrainSettings(shape, steps, 4, AdamWSettings.pytorchDefaults(),
        new LearningRateSchedule(3e-3, (int) Math.min(1, steps - 1), steps, 3e-4), 1.0, 11,
        new PriorSizes(12, 20, 2, 2), new PriorSizes(12, 40, 4, 3), 2, checkpointEvery);
  }

  @TempDir
  Path dir;

  @Test
  void aRunStoppedAndResumedEndsWithTheBitsOfAnUninterruptedOne() throws Exception {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    PretrainSettings s = tiny(6, 2);
    String whole = dir.resolve("whole.safetensors").toString();
    List<StepRecord> seen = new ArrayList<>();
    PretrainRun.Result a = PretrainRun.run(ctx, s, whole, false, 6, 0, 7, seen::addAll);
    assertEquals(6, a.step());
    assertEquals(6, seen.size());

    String parts = dir.resolve("parts.safetensors").toString();
    PretrainRun.Result first = PretrainRun.run(ctx, s, parts, false, 3, 0, 7, r -> { });
    assertEquals(3, first.step(), "--stop-at 3 ends after step 3, mid-interval");
    PretrainRun.Result rest = PretrainRun.run(ctx, s, parts, true, 6, 0, 7, r -> { });
    assertEquals(6, rest.step());

    Configuration conf = new Configuration();
    TrainingCheckpoint.Loaded x = TrainingCheckpoint.load(whole, conf);
    TrainingCheckpoint.Loaded y = TrainingCheckpoint.load(parts, conf);
    assertEquals(6, x.step());
    assertEquals(6, y.step());
    assertSameBits(x.stateDict(), y.stateDict(), "weights");
    assertSameBits(x.optimizer().expAvg(), y.optimizer().expAvg(), "exp_avg");
    assertSameBits(x.optimizer().expAvgSq(), y.optimizer().expAvgSq(), "exp_avg_sq");
    // The log holds every step once, the resumed run's after the first run's.
    List<StepRecord> log = LossLog.read(LossLog.pathFor(parts), Long.MAX_VALUE, conf);
    assertEquals(6, log.size());
    for (int i = 0; i < 6; i++) {
      assertEquals(i, log.get(i).step());
      assertEquals(seen.get(i).loss(), log.get(i).loss(), "loss of step " + i);
    }
    assertTrue(Files.exists(Path.of(TrainingCheckpoint.optimizerPath(parts))));
  }

  @Test
  void theBatchIsTheSameWhateverTheNumberOfTasks() throws Exception {
    // Table `slot` of step s is drawn from (s, slot), so one task and three see the same batch:
    // the first step's loss (before any update) agrees to float summation order.
    PretrainSettings s = tiny(1, 1);
    double[] loss = new double[3];
    for (int p = 1; p <= 3; p++) {
      MosaicContext ctx = MosaicContext.init(TestSpark.get(), p);
      List<StepRecord> seen = new ArrayList<>();
      PretrainRun.run(ctx, s, dir.resolve("p" + p + ".safetensors").toString(), false, 1, 0, 7,
          seen::addAll);
      loss[p - 1] = seen.get(0).loss();
    }
    // A mean of 4 cross-entropies near 1: sums of 4 floats in another order differ by a few ulp.
    assertEquals(loss[0], loss[1], 1e-6);
    assertEquals(loss[0], loss[2], 1e-6);
  }

  @Test
  void anExistingCheckpointIsRefusedWithoutResumeAndAResumeWithOtherSettings() {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    String out = dir.resolve("m.safetensors").toString();
    PretrainRun.run(ctx, tiny(2, 2), out, false, 2, 0, 7, r -> { });
    IllegalArgumentException again = assertThrows(IllegalArgumentException.class,
        () -> PretrainRun.run(ctx, tiny(2, 2), out, false, 2, 0, 7, r -> { }));
    assertTrue(again.getMessage().contains("--resume"), again.getMessage());
    PretrainSettings other = new PretrainSettings(tiny(4, 2).shape(), 4, 8,
        AdamWSettings.pytorchDefaults(), new LearningRateSchedule(3e-3, 1, 4, 3e-4), 1.0, 11,
        new PriorSizes(12, 20, 2, 2), new PriorSizes(12, 40, 4, 3), 2, 2);
    IllegalArgumentException changed = assertThrows(IllegalArgumentException.class,
        () -> PretrainRun.run(ctx, other, out, true, 4, 0, 7, r -> { }));
    assertTrue(changed.getMessage().contains("mosaic_pretrain_batch: checkpoint 4, now 8"),
        changed.getMessage());
    // More steps than the first run asked for: allowed, the run goes on.
    assertEquals(4, PretrainRun.run(ctx, tiny(4, 2), out, true, 4, 0, 7, r -> { }).step());
  }

  static void assertSameBits(Map<String, Tensor> a, Map<String, Tensor> b, String what) {
    assertEquals(a.keySet(), b.keySet(), what);
    for (String k : a.keySet()) {
      assertArrayEquals(a.get(k).data(), b.get(k).data(), what + " " + k);
    }
  }
}
