package dev.mosaic.kernels.io;

import static dev.mosaic.kernels.io.RawSafetensors.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Headers built to be expensive: near the 100 MB cap, a million tensors, megabyte names, endless
 * arrays. Each is read or refused at a cost proportional to the header (measured as bytes this
 * thread allocates, which does not depend on timing or GC), and every error is one short line.
 */
class SafetensorsLimitsTest {
  /** Longest message any of these errors may have (the file path is most of it). */
  private static final int MAX_MESSAGE = 1_000;

  /** Heap allocated per header byte, at most. Parsing a tree of the header took far more. */
  private static final long MAX_ALLOCATED_PER_HEADER_BYTE = 15;

  @TempDir Path dir;

  @Test
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void headerNearTheCapWithTinyTensorsIsRefusedCheaply() throws IOException {
    Path f = dir.resolve("near-cap.safetensors");
    long headerBytes = GeneratedHeaders.tinyTensors(f, 1_666_000);
    assertTrue(headerBytes > 99_000_000L && headerBytes <= SafetensorsFile.MAX_HEADER_BYTES,
        () -> "header is " + headerBytes + " bytes");
    long[] allocated = new long[1];
    SafetensorsException e = allocatedInto(allocated, () -> assertFails(f, null,
        () -> Safetensors.read(f), "header has more than 1,000,000 tensors"));
    assertTrue(allocated[0] < MAX_ALLOCATED_PER_HEADER_BYTE * headerBytes,
        () -> "allocated " + allocated[0] + " bytes for a header of " + headerBytes);
    assertShort(e);
  }

  @Test
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void aMillionTensorsOpenWithBoundedCostAndShortErrors() throws IOException {
    Path f = dir.resolve("million.safetensors");
    long headerBytes = GeneratedHeaders.tinyTensors(f, SafetensorsFile.MAX_TENSORS);
    long[] allocated = new long[1];
    try (SafetensorsFile sf = allocatedInto(allocated, () -> SafetensorsFile.open(f))) {
      assertTrue(allocated[0] < MAX_ALLOCATED_PER_HEADER_BYTE * headerBytes,
          () -> "allocated " + allocated[0] + " bytes for a header of " + headerBytes);
      assertEquals(SafetensorsFile.MAX_TENSORS, sf.entries().size());
      assertArrayEquals(new int[] {0}, sf.read("t0999999").shape());
      String msg = assertFails(f, "absent", () -> sf.read("absent"), "no such tensor",
          "the file has 1,000,000 tensor(s): [t0000000, t0000001,", "t0000009] and 999,990 more")
          .getMessage();
      assertTrue(msg.length() < MAX_MESSAGE, () -> msg.length() + " chars: " + msg);
    }
  }

  @Test
  void metadataKeysAreCapped() throws IOException {
    Path f = dir.resolve("meta.safetensors");
    GeneratedHeaders.write(f, out -> {
      out.write("{\"__metadata__\":{".getBytes(StandardCharsets.US_ASCII));
      for (int i = 0; i <= SafetensorsFile.MAX_METADATA_KEYS; i++) {
        out.write(((i == 0 ? "" : ",") + "\"k" + i + "\":\"\"").getBytes(StandardCharsets.US_ASCII));
      }
      out.write("}}".getBytes(StandardCharsets.US_ASCII));
    }, 0);
    assertFails(f, null, () -> Safetensors.metadata(f), "__metadata__ has more than 100,000 keys");
  }

  @Test
  void megabyteNamesAreCutInMessages() throws IOException {
    String name = "n".repeat(1_000_000);
    Path f = RawSafetensors.write(dir.resolve("longname.safetensors"),
        "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
        new byte[4]);
    SafetensorsException e = assertThrows(() -> Safetensors.read(f));
    assertEquals(name, e.tensor()); // the full name stays available to code
    assertShort(e, "n".repeat(100) + "... (1,000,000 chars)", "size mismatch");

    Path g = dir.resolve("lookup.safetensors");
    Safetensors.write(g, Map.of("x", Tensor.of(new float[] {1}, 1)));
    assertShort(assertThrows(() -> Safetensors.read(g, name)), "no such tensor", "[x]");

    // Names in a duplicate-key error and in a list of names are cut too.
    Path d = RawSafetensors.write(dir.resolve("dupname.safetensors"),
        "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"" + name
            + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", new byte[0]);
    assertShort(assertThrows(() -> Safetensors.read(d)), "Duplicate field");
    Path l = RawSafetensors.write(dir.resolve("listname.safetensors"),
        "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", new byte[0]);
    assertShort(assertThrows(() -> Safetensors.read(l, "other")), "1 tensor(s): [nnnn");
  }

  @Test
  void longArraysAreRefusedWithoutReadingThemIn() throws IOException {
    Path shape = dir.resolve("rank.safetensors");
    GeneratedHeaders.write(shape, out -> {
      out.write("{\"w\":{\"dtype\":\"F32\",\"shape\":[1".getBytes(StandardCharsets.US_ASCII));
      for (int i = 0; i < 5_000_000; i++) {
        out.write(",1".getBytes(StandardCharsets.US_ASCII));
      }
      out.write("],\"data_offsets\":[0,4]}}".getBytes(StandardCharsets.US_ASCII));
    }, 4);
    assertShort(assertThrows(() -> Safetensors.read(shape)), "'w'",
        "\"shape\" has more than 64 dimensions");

    Path offsets = dir.resolve("offsets.safetensors");
    GeneratedHeaders.write(offsets, out -> {
      out.write("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0".getBytes(
          StandardCharsets.US_ASCII));
      for (int i = 0; i < 5_000_000; i++) {
        out.write(",4".getBytes(StandardCharsets.US_ASCII));
      }
      out.write("]}}".getBytes(StandardCharsets.US_ASCII));
    }, 4);
    assertShort(assertThrows(() -> Safetensors.read(offsets)),
        "\"data_offsets\" must be an array of two integers [begin, end], but is an array"
            + " ([0,4,4,...])");

    // An unknown field may be long: it is skipped, and its value is not quoted in any error.
    Path extra = dir.resolve("extra.safetensors");
    GeneratedHeaders.write(extra, out -> {
      out.write("{\"w\":{\"extra\":[".getBytes(StandardCharsets.US_ASCII));
      for (int i = 0; i < 5_000_000; i++) {
        out.write("[0],".getBytes(StandardCharsets.US_ASCII));
      }
      out.write("0],\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".getBytes(
          StandardCharsets.US_ASCII));
    }, 4);
    assertArrayEquals(new float[] {0f}, Safetensors.read(extra, "w").data());
  }

  @Test
  void longValuesAreQuotedShort() throws IOException {
    String big = "[" + "1,".repeat(100_000) + "1]";
    Path f = RawSafetensors.write(dir.resolve("bigdtype.safetensors"),
        "{\"w\":{\"dtype\":" + big + ",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
    assertShort(assertThrows(() -> Safetensors.read(f)),
        "\"dtype\" must be a string, but is an array ([1,1,1,", "...)");
  }

  @Test
  void aWrongEntryIsReportedOnlyWhenTheHeaderIsJson() throws IOException {
    // The first entry is wrong, but the header is not even JSON: that is the error.
    Path f = RawSafetensors.write(dir.resolve("both.safetensors"),
        "{\"a\":1,\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},}", new byte[0]);
    assertFails(f, null, () -> Safetensors.read(f), "not valid JSON");
    // Past a wrong entry, a bad byte is still found.
    byte[] header = "{\"a\":1,\"b\":\"\u00ff\"}".getBytes(StandardCharsets.ISO_8859_1);
    Path g = RawSafetensors.write(dir.resolve("latin-late.safetensors"), header, new byte[0]);
    assertFails(g, null, () -> Safetensors.read(g), "not valid UTF-8");
    // A field twice in one entry.
    Path h = RawSafetensors.write(dir.resolve("twice.safetensors"),
        "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]}}",
        new byte[0]);
    assertFails(h, "w", () -> Safetensors.read(h), "header entry has \"dtype\" twice");
  }

  @Test
  void writerRefusesWhatTheReaderWould() {
    Path f = dir.resolve("deep.safetensors");
    int[] shape = new int[SafetensorsFile.MAX_RANK + 1];
    java.util.Arrays.fill(shape, 1);
    assertFails(f, "deep", () -> Safetensors.write(f, Map.of("deep", Tensor.of(new float[1],
        shape))), "65 dimensions, more than the 64");
  }

  private static SafetensorsException assertThrows(
      org.junit.jupiter.api.function.Executable call) {
    return org.junit.jupiter.api.Assertions.assertThrows(SafetensorsException.class, call);
  }

  /** One line, at most {@link #MAX_MESSAGE} characters, holding every fragment. */
  private static void assertShort(SafetensorsException e, String... fragments) {
    String msg = e.getMessage();
    String head = msg.substring(0, Math.min(msg.length(), 300));
    assertTrue(msg.length() < MAX_MESSAGE, () -> msg.length() + " chars: " + head + "...");
    assertTrue(!msg.contains("\n"), () -> "not one line: " + head);
    for (String f : fragments) {
      assertTrue(msg.contains(f), () -> "message lacks \"" + f + "\": " + head);
    }
  }

  /** {@code call()}, with the bytes this thread allocated meanwhile in {@code out[0]}. */
  private static <T> T allocatedInto(long[] out, Supplier<T> call) {
    com.sun.management.ThreadMXBean mx =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long before = mx.getCurrentThreadAllocatedBytes();
    T result = call.get();
    out[0] = mx.getCurrentThreadAllocatedBytes() - before;
    return result;
  }
}
