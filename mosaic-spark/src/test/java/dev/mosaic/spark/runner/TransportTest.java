package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.WireDtype;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class TransportTest {
  private static final SparkConf NO_GPUS = new SparkConf(false);
  private static final SparkConf GPU_PER_TASK = new SparkConf(false)
      .set("spark.executor.resource.gpu.amount", "4")
      .set("spark.task.resource.gpu.amount", "1");
  private static final SparkConf SHARED_GPU = new SparkConf(false)
      .set("spark.executor.resource.gpu.amount", "1")
      .set("spark.task.resource.gpu.amount", "0.25");

  @Test
  void autoUsesNcclOnlyWhereEveryTaskOwnsAGpu() {
    assertEquals(Transport.TCP, Transport.choose("auto", "auto", NO_GPUS));
    assertEquals(Transport.TCP, Transport.choose("auto", "gpu", NO_GPUS),
        "GPU kernels without GPU scheduling may share a GPU: NCCL would refuse");
    assertEquals(Transport.TCP, Transport.choose("auto", "gpu", SHARED_GPU));
    assertEquals(Transport.NCCL, Transport.choose("auto", "auto", GPU_PER_TASK));
    assertEquals(Transport.NCCL, Transport.choose("auto", "gpu", GPU_PER_TASK));
    assertEquals(Transport.TCP, Transport.choose("auto", "cpu", GPU_PER_TASK),
        "CPU kernels keep their data on the host: TCP");
  }

  @Test
  void bf16OnTheWireIsRefusedWithNcclInOneLine() {
    Transport.checkWireDtype(Transport.TCP, WireDtype.BF16);
    Transport.checkWireDtype(Transport.NCCL, WireDtype.FP32);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Transport.checkWireDtype(Transport.NCCL, WireDtype.BF16));
    assertEquals("spark.mosaic.comm.wireDtype=bf16 applies to the TCP communicator only, but this"
        + " stage runs NCCL: set spark.mosaic.gpu.dtype=bf16 to move K/V in bf16 between GPUs, or"
        + " spark.mosaic.comm.backend=tcp", e.getMessage());
  }

  @Test
  void explicitChoicesWin() {
    assertEquals(Transport.TCP, Transport.choose("tcp", "gpu", GPU_PER_TASK));
    assertEquals(Transport.NCCL, Transport.choose("nccl", "auto", NO_GPUS));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Transport.choose("nccl", "cpu", GPU_PER_TASK));
    assertTrue(e.getMessage().startsWith("spark.mosaic.comm.backend=nccl needs the tasks on GPUs"),
        e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> Transport.choose("auto", "gpu", new SparkConf(false)
            .set("spark.task.resource.gpu.amount", "one")));
    assertEquals("spark.task.resource.gpu.amount must be a number, got 'one'", e.getMessage());
  }
}
