package dev.mosaic.kernels.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reading a 128 MiB tensor in a JVM whose heap is only 1.5x that: the reader must go straight
 * from the file into the float[] (no byte[] copy of the data, no whole-file buffer).
 */
class SafetensorsLargeTensorTest {
  @TempDir Path dir;

  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void reads128MiBTensorWithHeapOf192MiB() throws IOException, InterruptedException {
    int n = 32 * 1024 * 1024; // 128 MiB of float32
    Path file = dir.resolve("large.safetensors");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd =
        List.of(
            java,
            "-Xmx192m",
            "-XX:+UseG1GC",
            "-cp",
            System.getProperty("java.class.path"),
            LargeTensorChild.class.getName(),
            file.toString(),
            Integer.toString(n));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), () -> "child failed: " + String.join(" ", cmd) + "\n" + out);
    assertTrue(out.contains("OK"), out);
  }
}
