package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.spark.cli.SelftestCommand;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class SelftestCommandTest {

  private static int run(StringBuilder text, String... args) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int code;
    try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      code = SelftestCommand.run(args, out);
    }
    text.append(bytes.toString(StandardCharsets.UTF_8));
    return code;
  }

  @Test
  void withoutAGpuItSaysWhyAndExitsZero() {
    Assumptions.assumeFalse(Gpu.available(), "this machine has a GPU");
    StringBuilder out = new StringBuilder();
    assertEquals(0, run(out));
    assertTrue(out.toString().startsWith("selftest: no usable GPU: " + Gpu.unavailableReason()),
        out.toString());
    StringBuilder strict = new StringBuilder();
    assertEquals(SelftestCommand.EXIT_NO_GPU, run(strict, "--require-gpu"));
  }

  @Test
  void onAGpuEveryComparisonPasses() {
    Assumptions.assumeTrue(Gpu.available(), () -> "no usable GPU: " + Gpu.unavailableReason());
    StringBuilder out = new StringBuilder();
    int code = run(out, "--seed", "7");
    assertEquals(0, code, out.toString());
    assertTrue(out.toString().contains("selftest: all comparisons within"), out.toString());
  }
}
