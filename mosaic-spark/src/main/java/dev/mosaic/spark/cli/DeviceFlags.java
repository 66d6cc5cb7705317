package dev.mosaic.spark.cli;

import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.Transport;
import java.util.Map;
import java.util.Set;

/**
 * The device flags shared by the commands that run attention: {@code --device cpu|gpu|auto},
 * {@code --gpu-dtype fp32|fp16|bf16} and {@code --comm auto|tcp|nccl}, checked together so that a
 * combination that cannot work fails before Spark starts. Only the flags given become Spark
 * settings ({@link #settings}): one left out keeps what spark-submit or spark-defaults say.
 */
record DeviceFlags(String device, GpuDtype gpuDtype, Map<String, String> settings) {
  static final Set<String> NAMES = Set.of("device", "gpu-dtype", "comm");
  static final String USAGE =
      "[--device cpu|gpu|auto] [--gpu-dtype fp32|fp16|bf16] [--comm auto|tcp|nccl]";

  static DeviceFlags parse(Flags f) {
    String device;
    try {
      device = Devices.check(f.string("device", Devices.AUTO));
    } catch (IllegalArgumentException e) {
      throw new UserError(e.getMessage());
    }
    GpuDtype dtype;
    try {
      dtype = GpuDtype.parse(f.string("gpu-dtype", "fp32"));
    } catch (IllegalArgumentException e) {
      throw new UserError(e.getMessage());
    }
    String comm = f.string("comm", "auto");
    if (!Transport.SETTINGS.contains(comm)) {
      throw new UserError("--comm expects auto, tcp or nccl, got '" + comm + "'");
    }
    if (device.equals(Devices.CPU) && dtype != GpuDtype.FP32) {
      throw new UserError("--gpu-dtype " + f.string("gpu-dtype", "") + " stores inputs on a GPU,"
          + " but --device is cpu (the CPU kernel computes in fp32)");
    }
    if (device.equals(Devices.CPU) && comm.equals("nccl")) {
      throw new UserError("--comm nccl connects GPUs, but --device is cpu: use --comm tcp or"
          + " --device gpu");
    }
    Map<String, String> settings = new java.util.LinkedHashMap<>();
    if (f.has("device")) {
      settings.put(MosaicConfig.DEVICE, device);
    }
    if (f.has("gpu-dtype")) {
      settings.put(MosaicConfig.GPU_DTYPE, dtype.name().toLowerCase(java.util.Locale.ROOT));
    }
    if (f.has("comm")) {
      settings.put(MosaicConfig.COMM_BACKEND, comm);
    }
    return new DeviceFlags(device, dtype, Map.copyOf(settings));
  }

  /** Adds the given flags to {@code conf} as Spark configuration entries. */
  void putInto(Map<String, String> conf) {
    conf.putAll(settings);
  }
}
