package dev.mosaic.kernels.io;

import static dev.mosaic.kernels.io.RawSafetensors.assertFails;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tensor the heap cannot hold ends in one line that says how large it is and how to raise the
 * heap, never in an {@link OutOfMemoryError}. The files are sparse: their headers declare
 * gigabytes, the data is a hole that is never written.
 */
class SafetensorsHeapTest {
  @TempDir Path dir;

  @Test
  void tensorLargerThanTheWholeHeapIsRefusedBeforeAllocating() throws IOException {
    long maxHeap = Runtime.getRuntime().maxMemory();
    long cols = 1000;
    long rows = maxHeap / (Float.BYTES * cols) + 1000; // just over -Xmx, whatever it is
    org.junit.jupiter.api.Assumptions.assumeTrue(rows * cols <= HeapBudget.MAX_ELEMENTS,
        "the heap is larger than the largest float[]: covered by the element limit test");
    Path f = dir.resolve("huge.safetensors");
    GeneratedHeaders.sparseTensor(f, "x", rows, cols);
    String[] fragments = {"too large for the heap: F32 [" + rows + ", " + cols + "] is ",
        "as float32, more than the heap can give (-Xmx ", "; set MOSAIC_HEAP (bin/mosaic) or -Xmx"};
    SafetensorsException one = assertFails(f, "x", () -> Safetensors.read(f, "x"), fragments);
    assertNull(one.getCause());
    assertFails(f, "x", () -> Safetensors.read(f), fragments);
  }

  @Test
  void tensorWithMoreElementsThanAnArrayIsRefused() throws IOException {
    Path f = dir.resolve("elements.safetensors");
    GeneratedHeaders.sparseTensor(f, "x", 50_000, 50_000); // 10 GB of holes
    assertFails(f, "x", () -> Safetensors.read(f, "x"),
        "F32 [50000, 50000] has 2,500,000,000 elements, more than a Java float[] can hold");
  }

  @Test
  void tensorsThatCanNeverFitTogetherAreRefusedBeforeReadingAny() throws IOException {
    long half = Runtime.getRuntime().maxMemory() / Float.BYTES / 2 + 1000;
    org.junit.jupiter.api.Assumptions.assumeTrue(half <= HeapBudget.MAX_ELEMENTS);
    long bytes = half * Float.BYTES;
    Path f = dir.resolve("pair.safetensors");
    GeneratedHeaders.write(f, out -> out.write(("{\"a\":{\"dtype\":\"F32\",\"shape\":[" + half
        + "],\"data_offsets\":[0," + bytes + "]},\"b\":{\"dtype\":\"F32\",\"shape\":[" + half
        + "],\"data_offsets\":[" + bytes + "," + 2 * bytes + "]}}").getBytes(
        StandardCharsets.US_ASCII)), 2 * bytes);
    assertFails(f, null, () -> Safetensors.read(f), "the 2 tensors need ",
        "as float32 together, more than the heap can give", "MOSAIC_HEAP");
  }

  /**
   * In a 128 MiB heap holding 80 MiB, a 64 MiB tensor passes the up-front check but its allocation
   * fails: the {@link OutOfMemoryError} becomes the same one-line error, and the JVM carries on.
   */
  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void failedAllocationBecomesTheSameOneLineError() throws IOException, InterruptedException {
    Path f = dir.resolve("64mib.safetensors");
    GeneratedHeaders.sparseTensor(f, "x", 16, 1 << 20);
    Path small = dir.resolve("small.safetensors");
    Safetensors.write(small, Map.of("small", Tensor.of(new float[] {3f}, 1)));
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd = List.of(java, "-Xmx128m", "-XX:+UseG1GC", "-cp",
        System.getProperty("java.class.path"), HeapLimitChild.class.getName(), f.toString(), "80",
        "x", small.toString());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(100, TimeUnit.SECONDS), "child did not finish");
    assertEquals(0, p.exitValue(), () -> "child failed: " + String.join(" ", cmd) + "\n" + out);
    assertTrue(out.contains("MESSAGE safetensors file " + f + ", tensor 'x': too large for the heap:"
        + " F32 [16, 1048576] is 64.0 MiB as float32, more than the heap can give (-Xmx 128.0 MiB,"),
        out);
    assertTrue(out.contains("; set MOSAIC_HEAP (bin/mosaic) or -Xmx\n"), out);
    assertTrue(out.contains("CAUSE java.lang.OutOfMemoryError"), out);
    assertTrue(out.contains("SMALL 3.0"), out);
    assertFalse(out.contains("Exception in thread"), out);
  }
}
