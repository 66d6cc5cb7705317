package dev.mosaic.kernels.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writer then reader: everything must come back bit for bit, in order. */
class SafetensorsRoundTripTest {
  @TempDir Path dir;

  private final long seed = dev.mosaic.test.TestSeed.get();
  private final Random rnd = new Random(seed);

  private Tensor randomTensor(int rank, boolean allowZero) {
    int[] shape = new int[rank];
    for (int i = 0; i < rank; i++) {
      shape[i] = allowZero && rnd.nextInt(6) == 0 ? 0 : 1 + rnd.nextInt(rank >= 4 ? 4 : 7);
    }
    Tensor t = Tensor.zeros(shape);
    float[] d = t.data();
    for (int i = 0; i < d.length; i++) {
      switch (rnd.nextInt(10)) {
        case 0:
          d[i] = Float.intBitsToFloat(rnd.nextInt()); // any bit pattern, NaN payloads included
          break;
        case 1:
          d[i] = rnd.nextBoolean() ? -0.0f : Float.MIN_VALUE;
          break;
        default:
          d[i] = (float) rnd.nextGaussian() * 10;
      }
    }
    return t;
  }

  private static void assertSameTensor(String what, Tensor expected, Tensor actual) {
    assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
    float[] e = expected.data();
    float[] a = actual.data();
    assertEquals(e.length, a.length, what + " size");
    for (int i = 0; i < e.length; i++) {
      int ei = Float.floatToRawIntBits(e[i]);
      int ai = Float.floatToRawIntBits(a[i]);
      if (ei != ai) {
        throw new AssertionError(
            what + "[" + i + "]: expected " + e[i] + " (0x" + Integer.toHexString(ei) + ") got "
                + a[i] + " (0x" + Integer.toHexString(ai) + ")");
      }
    }
  }

  @Test
  void randomTensorsOfRanksZeroToFiveRoundTripExactly() {
    for (int trial = 0; trial < 5; trial++) {
      Map<String, Tensor> in = new LinkedHashMap<>();
      for (int rank = 0; rank <= 5; rank++) {
        for (int k = 0; k < 3; k++) {
          // Names deliberately not in sorted order, with dots and non-ASCII.
          in.put("layer" + (5 - rank) + ".w" + k + (k == 2 ? ".ünï" : ""), randomTensor(rank, true));
        }
      }
      in.put("empty", Tensor.zeros(0));
      in.put("emptyMiddle", Tensor.zeros(3, 0, 2));
      Path f = dir.resolve("rt" + trial + ".safetensors");
      Safetensors.write(f, in);
      Map<String, Tensor> out = Safetensors.read(f);
      assertEquals(new ArrayList<>(in.keySet()), new ArrayList<>(out.keySet()), "seed " + seed);
      for (String name : in.keySet()) {
        assertSameTensor("seed " + seed + " " + name, in.get(name), out.get(name));
        assertSameTensor("seed " + seed + " " + name + " alone", in.get(name), Safetensors.read(f, name));
      }
    }
  }

  @Test
  void scalarRoundTrips() {
    Path f = dir.resolve("scalar.safetensors");
    Safetensors.write(f, Map.of("s", Tensor.of(new float[] {2.5f})));
    Tensor s = Safetensors.read(f, "s");
    assertEquals(0, s.rank());
    assertEquals(2.5f, s.data()[0]);
  }

  @Test
  void metadataRoundTripsAndComesFirst() throws IOException {
    Path f = dir.resolve("meta.safetensors");
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", "pt");
    meta.put("note", "quotes \" and \\ and newline \n and ü");
    meta.put("empty", "");
    Safetensors.write(f, Map.of("x", Tensor.of(new float[] {1, 2}, 2)), meta);
    assertEquals(meta, Safetensors.metadata(f));
    assertEquals(List.of("x"), List.copyOf(Safetensors.read(f).keySet()));
    String header = headerText(f);
    assertTrue(header.startsWith("{\"__metadata__\""), header);

    Path g = dir.resolve("nometa.safetensors");
    Safetensors.write(g, Map.of("x", Tensor.of(new float[] {1, 2}, 2)));
    assertEquals(Map.of(), Safetensors.metadata(g));
    assertTrue(!headerText(g).contains("__metadata__"));
  }

  private static String headerText(Path f) throws IOException {
    byte[] all = Files.readAllBytes(f);
    long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    return new String(all, 8, (int) n, StandardCharsets.UTF_8);
  }

  @Test
  void headerIsAlignedAndPaddedWithSpacesAndDataIsF32LittleEndian() throws IOException {
    for (int len = 0; len < 12; len++) {
      Path f = dir.resolve("align" + len + ".safetensors");
      float[] v = new float[len];
      for (int i = 0; i < len; i++) {
        v[i] = i - 2.5f;
      }
      // Vary the name length so that every padding amount 0..7 occurs.
      Safetensors.write(f, Map.of("n".repeat(len + 1), Tensor.of(v, len)));
      byte[] all = Files.readAllBytes(f);
      long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      assertEquals(0, (8 + n) % 8, "header length " + n);
      String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
      String trimmed = header.stripTrailing();
      assertTrue(trimmed.endsWith("}"), header);
      assertTrue(header.substring(trimmed.length()).chars().allMatch(c -> c == ' '));
      assertTrue(header.length() - trimmed.length() < 8);
      assertTrue(header.contains("\"dtype\":\"F32\""), header);
      assertTrue(header.contains("\"data_offsets\":[0," + (4 * len) + "]"), header);
      assertEquals(8 + n + 4L * len, all.length);
      ByteBuffer data = ByteBuffer.wrap(all, (int) (8 + n), 4 * len).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < len; i++) {
        assertEquals(v[i], data.getFloat());
      }
    }
  }

  @Test
  void emptyMapWritesAValidFile() throws IOException {
    Path f = dir.resolve("none.safetensors");
    Safetensors.write(f, Map.of());
    assertEquals(Map.of(), Safetensors.read(f));
    assertEquals(16, Files.size(f)); // 8 + "{}" padded to 8
  }

  @Test
  void writeIsAtomicOverwriteAndLeavesNoTemporaryFiles() throws IOException {
    Path f = dir.resolve("over.safetensors");
    Safetensors.write(f, Map.of("a", Tensor.of(new float[] {1, 2, 3}, 3)));
    Safetensors.write(f, Map.of("b", Tensor.of(new float[] {4}, 1)));
    assertEquals(List.of("b"), List.copyOf(Safetensors.read(f).keySet()));
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(List.of(f.getFileName().toString()),
          s.map(p -> p.getFileName().toString()).collect(Collectors.toList()));
    }
  }

  @Test
  void failedWriteLeavesExistingFileAndNoTemporaryFiles() throws IOException {
    Path f = dir.resolve("keep.safetensors");
    Safetensors.write(f, Map.of("a", Tensor.of(new float[] {1}, 1)));
    byte[] before = Files.readAllBytes(f);
    Map<String, Tensor> bad = new LinkedHashMap<>();
    bad.put("ok", Tensor.of(new float[] {1}, 1));
    bad.put("__metadata__", Tensor.of(new float[] {1}, 1));
    RawSafetensors.assertFails(f, "__metadata__", () -> Safetensors.write(f, bad), "reserved");
    Map<String, Tensor> nullTensor = new LinkedHashMap<>();
    nullTensor.put("t", null);
    RawSafetensors.assertFails(f, "t", () -> Safetensors.write(f, nullTensor), "null");
    assertArrayEquals(before, Files.readAllBytes(f));
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(1, s.count());
    }
    // A directory that does not exist: a clear error, nothing created.
    Path nowhere = dir.resolve("no/such/dir/x.safetensors");
    RawSafetensors.assertFails(
        nowhere, null, () -> Safetensors.write(nowhere, Map.of()), "temporary file");
  }

  @Test
  void relativePathWorks() {
    Path f = dir.resolve("rel.safetensors");
    Path rel = Path.of("").toAbsolutePath().relativize(f);
    Safetensors.write(rel, Map.of("a", Tensor.of(new float[] {7}, 1)));
    assertEquals(7f, Safetensors.read(f, "a").data()[0]);
  }

  @Test
  void readingSeveralTensorsFromOneOpenFile() {
    Path f = dir.resolve("open.safetensors");
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("b", Tensor.of(new float[] {1, 2, 3, 4}, 2, 2));
    in.put("a", Tensor.of(new float[] {5}, 1));
    Safetensors.write(f, in);
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      assertEquals(List.of("b", "a"), sf.names());
      SafetensorsFile.Entry e = sf.entry("b");
      assertEquals("F32", e.dtype());
      assertArrayEquals(new long[] {2, 2}, e.shape());
      assertEquals(0, e.begin());
      assertEquals(16, e.end());
      assertEquals(SafetensorsDtype.F32, e.knownDtype());
      assertEquals(20, sf.dataLength());
      assertArrayEquals(new float[] {5}, sf.read("a").data());
      assertArrayEquals(new float[] {1, 2, 3, 4}, sf.read("b").data());
    }
  }

  @Test
  void largeTensorSpanningManyChunksRoundTrips() {
    // 3M floats = 12 MB: several 1 MiB chunks each way, with a ragged last chunk.
    float[] v = new float[3_000_001];
    for (int i = 0; i < v.length; i++) {
      v[i] = i * 0.25f - 1000;
    }
    Path f = dir.resolve("big.safetensors");
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("head", Tensor.of(new float[] {42}, 1));
    in.put("big", Tensor.of(v, v.length));
    in.put("tail", Tensor.of(new float[] {-1, -2}, 2));
    Safetensors.write(f, in);
    Map<String, Tensor> out = Safetensors.read(f);
    assertArrayEquals(v, out.get("big").data());
    assertArrayEquals(new float[] {42}, out.get("head").data());
    assertArrayEquals(new float[] {-1, -2}, out.get("tail").data());
  }
}
