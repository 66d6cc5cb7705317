package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mosaic.kernels.gpu.GpuDtype;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DeviceFlagsTest {
  private static DeviceFlags parse(String... args) {
    return DeviceFlags.parse(Flags.parse("test", args, DeviceFlags.NAMES, Set.of()));
  }

  @Test
  void onlyTheFlagsGivenBecomeSettings() {
    // A flag left out must not override spark-submit's or spark-defaults' value with a default.
    Map<String, String> conf = new HashMap<>(Map.of("spark.mosaic.comm.backend", "tcp"));
    DeviceFlags none = parse();
    none.putInto(conf);
    assertEquals(Map.of("spark.mosaic.comm.backend", "tcp"), conf);
    assertEquals("auto", none.device());
    assertEquals(GpuDtype.FP32, none.gpuDtype());

    parse("--device", "gpu", "--gpu-dtype", "bf16", "--comm", "nccl").putInto(conf);
    assertEquals(Map.of("spark.mosaic.device", "gpu", "spark.mosaic.gpu.dtype", "bf16",
        "spark.mosaic.comm.backend", "nccl"), conf);
  }
}
