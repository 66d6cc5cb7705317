package dev.mosaic.spark.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.faults.FaultCluster;
import dev.mosaic.spark.faults.FaultPlan;
import dev.mosaic.spark.runner.ItSparkHome;
import dev.mosaic.spark.runner.MosaicContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Pretraining across two executor JVMs ({@code local-cluster[2,1,1024]}), one of which dies in the
 * middle of a stage's training steps ({@link FaultPlan.Action#HALT_IN_TRAINING}, after the first
 * checkpoint): the stage fails, the run goes on from the last checkpoint once Spark has replaced
 * the executor, and it ends with the very bits of a run that nothing interrupted.
 */
@Timeout(600)
class PretrainKillIT {
  private static final int SP = 2;
  private static final Path WORK = Path.of("target", "fault-it", "pretrain").toAbsolutePath();
  private static FaultCluster cluster;

  @BeforeAll
  static void startCluster() throws Exception {
    ItSparkHome.prepare();
    cluster = FaultCluster.start("mosaic-pretrain-kill-it", SP, WORK, Map.of(
        // An executor that died is noticed at once (its worker reports the exit); these bound
        // the rest.
        "spark.network.timeout", "60s",
        "spark.network.timeoutInterval", "5s",
        "spark.executor.heartbeatInterval", "2s"));
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void anExecutorThatDiesMidRunCostsAtMostOneIntervalAndChangesNoBit() throws Exception {
    MosaicContext ctx = MosaicContext.init(cluster.spark(), SP);
    PretrainSettings s = PretrainRunTest.tiny(8, 2);
    Files.createDirectories(WORK);
    String clean = WORK.resolve("clean.safetensors").toString();
    String hurt = WORK.resolve("hurt.safetensors").toString();
    for (String f : List.of(clean, hurt)) {
      Files.deleteIfExists(Path.of(f));
      Files.deleteIfExists(Path.of(TrainingCheckpoint.optimizerPath(f)));
      Files.deleteIfExists(Path.of(LossLog.pathFor(f)));
    }
    PretrainRun.Result a = PretrainRun.run(ctx, s, clean, false, 8, 0, 7, r -> { });
    assertEquals(0, a.restarts());

    // The first two steps (one stage) run clean; rank 1's executor dies in the second stage.
    PretrainRun.Result first = PretrainRun.run(ctx, s, hurt, false, 2, 0, 7, r -> { });
    assertEquals(2, first.step());
    String id = cluster.plan().install(Map.of(1, FaultPlan.Action.HALT_IN_TRAINING));
    CompletableFuture<String> died = CompletableFuture.supplyAsync(() -> {
      try {
        return cluster.plan().awaitMarker(id, "pid", 300_000);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    PretrainRun.Result b = PretrainRun.run(ctx, s, hurt, true, 8, 3, 7, r -> { });
    String pid = died.get(10, TimeUnit.SECONDS);
    assertFalse(ProcessHandle.of(Long.parseLong(pid)).map(ProcessHandle::isAlive).orElse(false),
        "the executor that ran rank 1 is gone");
    assertTrue(b.restarts() >= 1, "the stage the executor died in was run again");
    assertEquals(8, b.step());

    Configuration conf = new Configuration();
    TrainingCheckpoint.Loaded x = TrainingCheckpoint.load(clean, conf);
    TrainingCheckpoint.Loaded y = TrainingCheckpoint.load(hurt, conf);
    PretrainRunTest.assertSameBits(x.stateDict(), y.stateDict(), "weights");
    PretrainRunTest.assertSameBits(x.optimizer().expAvgSq(), y.optimizer().expAvgSq(),
        "exp_avg_sq");
    List<StepRecord> log = LossLog.read(LossLog.pathFor(hurt), Long.MAX_VALUE, conf);
    assertEquals(8, log.size(), "every step once in the log");
    for (int i = 0; i < 8; i++) {
      assertEquals(i, log.get(i).step());
    }
  }
}
