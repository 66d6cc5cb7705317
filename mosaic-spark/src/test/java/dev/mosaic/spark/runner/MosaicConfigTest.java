package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.spark.comm.WireDtype;
import java.time.Duration;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class MosaicConfigTest {

  @Test
  void defaults() {
    MosaicConfig c = MosaicConfig.defaults().validate();
    assertEquals(Duration.ofSeconds(120), c.commTimeout());
    assertEquals(1L << 30, c.maxFrameBytes());
    assertEquals(1, c.taskThreads());
    assertEquals(2, c.jobAttempts());
    assertEquals("auto", c.device());
    assertEquals("auto", c.commBackend());
    assertEquals(GpuDtype.FP32, c.gpuDtype());
    assertEquals(WireDtype.FP32, c.wireDtype());
    assertEquals(WireDtype.FP32, c.commConfig().wireDtype());
  }

  @Test
  void wireDtypeReachesTheCommunicatorSettings() {
    MosaicConfig c = MosaicConfig.defaults().with(MosaicConfig.COMM_WIRE_DTYPE, "bf16");
    assertEquals(WireDtype.BF16, c.wireDtype());
    assertEquals(WireDtype.BF16, c.commConfig().wireDtype());
    assertEquals(WireDtype.FP32, c.with(MosaicConfig.COMM_WIRE_DTYPE, " FP32 ").wireDtype());
  }

  @Test
  void readsTheSparkConfiguration() {
    SparkConf conf = new SparkConf(false)
        .set("spark.task.cpus", "3")
        .set(MosaicConfig.COMM_TIMEOUT, "2min")
        .set(MosaicConfig.DEVICE, "gpu")
        .set(MosaicConfig.COMM_BACKEND, "nccl")
        .set(MosaicConfig.GPU_DTYPE, "bf16");
    MosaicConfig c = MosaicConfig.from(conf).validate();
    assertEquals(3, c.taskThreads(), "task threads default to spark.task.cpus");
    assertEquals(Duration.ofMinutes(2), c.commTimeout());
    assertEquals("gpu", c.device());
    assertEquals("nccl", c.commBackend());
    assertEquals(GpuDtype.BF16, c.gpuDtype());
    assertEquals(5, c.with(MosaicConfig.TASK_THREADS, "5").taskThreads());
  }

  @Test
  void badValuesFailNamingTheKey() {
    assertMessage("spark.mosaic.task.threads must be a positive integer, got '0'",
        MosaicConfig.TASK_THREADS, "0");
    assertMessage("spark.mosaic.job.maxAttempts must be a positive integer, got 'two'",
        MosaicConfig.JOB_ATTEMPTS, "two");
    assertMessage("spark.mosaic.device: unknown device 'tpu'; expected one of cpu, gpu, auto",
        MosaicConfig.DEVICE, "tpu");
    assertMessage("spark.mosaic.comm.backend must be auto, tcp or nccl, got 'mpi'",
        MosaicConfig.COMM_BACKEND, "mpi");
    assertMessage("spark.mosaic.gpu.dtype: unknown GPU dtype 'fp8'; expected fp32, fp16 or bf16",
        MosaicConfig.GPU_DTYPE, "fp8");
    assertMessage("spark.mosaic.comm.wireDtype must be fp32 or bf16, got 'fp16'",
        MosaicConfig.COMM_WIRE_DTYPE, "fp16");
    assertMessage("spark.mosaic.comm.timeout must be a positive duration such as 30s or 2min,"
        + " got 'soon'", MosaicConfig.COMM_TIMEOUT, "soon");
    assertThrows(IllegalArgumentException.class,
        () -> MosaicConfig.defaults().with("spark.executor.memory", "1g"));
  }

  private static void assertMessage(String expected, String key, String value) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MosaicConfig.defaults().with(key, value));
    assertEquals(expected, e.getMessage());
  }
}
