package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The barrier runner builds the communicator the settings ask for, in real Spark barrier stages:
 * TCP by default on a machine without GPUs, and NCCL when asked — which, without a GPU, must fail
 * every task at once with the reason (through the same barrier round that carries the NCCL id),
 * never wait for a timeout.
 */
@Timeout(120)
class TransportWiringTest {

  @Test
  void cpuStagesConnectOverTcpAndComputeOnTheCpu() {
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    List<String> seen = BarrierRunner.run(ctx.jsc().parallelize(List.of(0, 1), 2),
        (TaskEnv env, java.util.Iterator<Integer> in) -> {
          try (AttentionKernel kernel = env.kernel(1)) {
            // The ring works: each rank gets the other's rank.
            float[] got = new float[1];
            env.comm().sendRecv(new float[] {env.rank()}, 0, 1, 1 - env.rank(), got, 0, 1,
                1 - env.rank()).await();
            return List.of(env.rank() + " " + env.comm().getClass().getSimpleName() + " "
                + kernel.getClass().getSimpleName() + " " + env.device() + " got " + (int) got[0])
                .iterator();
          }
        }, ctx.config(), String.class).collect();
    assertEquals(List.of("0 TcpCommunicator CpuFlashAttention auto got 1",
        "1 TcpCommunicator CpuFlashAttention auto got 0"), seen);
  }

  @Test
  void ncclWithoutAGpuFailsEveryTaskWithTheReason() {
    Assumptions.assumeFalse(Gpu.available(), "a GPU is usable here: NcclCommunicatorGpuTest runs");
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2)
        .with(MosaicConfig.COMM_BACKEND, "nccl")
        .with(MosaicConfig.JOB_ATTEMPTS, "1")
        .with(MosaicConfig.COMM_TIMEOUT, "60s");
    Random rnd = TestSeed.random();
    Tensor x = Tensor.randn(rnd, 1f, 2, 16, 8);
    AttentionWeights w = AttentionWeights.random(8, rnd.nextLong());
    long t0 = System.nanoTime();
    // A task without a GPU fails the same way on every attempt: thrown at once, as the task's error.
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> ShardedAttention.run(ctx, x,
            new ShardedAttention.Spec(2, 1, false, Long.MAX_VALUE, w, "ring")));
    double secs = (System.nanoTime() - t0) / 1e9;
    String msg = e.getMessage();
    assertTrue(msg.contains("NCCL communicator not started: rank 0 (stage "), msg);
    assertTrue(msg.contains("; rank 1 (stage "), "every rank's reason is reported: " + msg);
    assertTrue(msg.contains("this task has no GPU"), msg);
    assertTrue(msg.contains("set spark.mosaic.comm.backend=tcp"), msg);
    assertTrue(secs < 30, "failed in " + secs + " s: it waited instead of failing at once");
  }

  @Test
  void deviceGpuOnALocalMasterWithoutAGpuFailsBeforeTheStage() {
    Assumptions.assumeFalse(Gpu.available(), "a GPU is usable here");
    MosaicContext ctx = MosaicContext.init(TestSpark.get(), 2);
    Random rnd = TestSeed.random();
    Tensor x = Tensor.randn(rnd, 1f, 2, 16, 8);
    AttentionWeights w = AttentionWeights.random(8, rnd.nextLong());
    long jobsBefore = ctx.spark().sparkContext().statusTracker().getJobIdsForGroup(null).length;
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ShardedAttention.run(ctx, x, new ShardedAttention.Spec(2, 1, false, Long.MAX_VALUE,
            w, dev.mosaic.spark.strategy.StrategySpec.of("ring"), "gpu")));
    assertTrue(e.getMessage().startsWith("device gpu: no usable GPU on this machine (local[4,2]): "),
        e.getMessage());
    assertEquals(jobsBefore,
        ctx.spark().sparkContext().statusTracker().getJobIdsForGroup(null).length,
        "no Spark job was started");
  }
}
