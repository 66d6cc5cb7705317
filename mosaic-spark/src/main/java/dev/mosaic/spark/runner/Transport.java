package dev.mosaic.spark.runner;

import dev.mosaic.spark.gpu.Devices;
import org.apache.spark.SparkConf;

/**
 * Which communicator the tasks of a barrier stage build: TCP between JVMs, or NCCL between GPUs.
 * Decided once, on the driver, from the settings: the tasks meet in one barrier round, so they must
 * all make the same choice (a per-task decision could split the stage between two protocols).
 */
public enum Transport {
  TCP,
  NCCL;

  /** The values of {@code spark.mosaic.comm.backend}. */
  public static final java.util.List<String> SETTINGS = java.util.List.of("auto", "tcp", "nccl");

  /** The Spark setting that gives each task a GPU of its own. */
  static final String TASK_GPU_AMOUNT = "spark.task.resource.gpu.amount";

  /**
   * @param commBackend {@code spark.mosaic.comm.backend}: tcp, nccl or auto
   * @param device where the tasks compute: cpu, gpu or auto
   * @param conf the Spark configuration the stage runs under
   */
  public static Transport choose(String commBackend, String device, SparkConf conf) {
    Devices.check(device);
    switch (commBackend) {
      case "tcp":
        return TCP;
      case "nccl":
        if (device.equals(Devices.CPU)) {
          throw new IllegalArgumentException(MosaicConfig.COMM_BACKEND + "=nccl needs the tasks"
              + " on GPUs, but the device is cpu: use device gpu or auto, or comm backend tcp");
        }
        return NCCL;
      case "auto":
        // NCCL needs one GPU per rank: only Spark's whole-GPU task scheduling guarantees it. With
        // fractional amounts or no GPU scheduling, tasks may share a GPU, and TCP still works.
        return !device.equals(Devices.CPU) && taskGpuAmount(conf) >= 1 ? NCCL : TCP;
      default:
        throw new IllegalArgumentException(MosaicConfig.COMM_BACKEND
            + " must be auto, tcp or nccl, got '" + commBackend + "'");
    }
  }

  /**
   * Refuses bf16 K/V on the wire where the stage runs NCCL: NCCL moves device memory, whose type
   * {@code spark.mosaic.gpu.dtype} already sets (bf16 there halves the bytes too), and a second,
   * host-side rounding would only be silently ignored.
   */
  public static void checkWireDtype(Transport transport, dev.mosaic.spark.comm.WireDtype wire) {
    if (transport == NCCL && wire != dev.mosaic.spark.comm.WireDtype.FP32) {
      throw new IllegalArgumentException(MosaicConfig.COMM_WIRE_DTYPE + "=" + wire.label()
          + " applies to the TCP communicator only, but this stage runs NCCL: set "
          + MosaicConfig.GPU_DTYPE + "=bf16 to move K/V in bf16 between GPUs, or "
          + MosaicConfig.COMM_BACKEND + "=tcp");
    }
  }

  private static double taskGpuAmount(SparkConf conf) {
    String raw = conf.get(TASK_GPU_AMOUNT, "0");
    try {
      return Double.parseDouble(raw.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(TASK_GPU_AMOUNT + " must be a number, got '" + raw + "'");
    }
  }
}
