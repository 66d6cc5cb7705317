package dev.mosaic.kernels.io;

import static dev.mosaic.kernels.io.RawSafetensors.assertFails;
import static dev.mosaic.kernels.io.RawSafetensors.f32;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every malformed file gives a {@link SafetensorsException} whose message names the file, the
 * tensor when there is one, and the problem. Each check runs through {@link Safetensors#read(Path)}
 * and, where the header is at fault, also through the one-tensor read and {@code metadata}, which
 * validate the same header.
 */
class SafetensorsValidationTest {
  @TempDir Path dir;

  private Path raw(String name, String header, byte[] data) throws IOException {
    return RawSafetensors.write(dir.resolve(name), header, data);
  }

  /** Asserts all three entry points fail on {@code f} with the same message. */
  private void assertAllFail(Path f, String tensor, String... fragments) {
    String m1 = assertFails(f, tensor, () -> Safetensors.read(f), fragments).getMessage();
    String m2 = assertFails(f, tensor, () -> Safetensors.read(f, "anything"), fragments).getMessage();
    String m3 = assertFails(f, tensor, () -> Safetensors.metadata(f), fragments).getMessage();
    assertEquals(m1, m2);
    assertEquals(m1, m3);
  }

  private static String entry(String name, String dtype, String shape, String offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape
        + ",\"data_offsets\":" + offsets + "}";
  }

  @Test
  void missingFile() {
    Path f = dir.resolve("absent.safetensors");
    assertAllFail(f, null, "no such file");
  }

  @Test
  void fileShorterThan8Bytes() throws IOException {
    for (int n = 0; n < 8; n++) {
      Path f = dir.resolve("short" + n + ".safetensors");
      Files.write(f, new byte[n]);
      assertAllFail(f, null, "file is " + n + " bytes", "too short");
    }
  }

  @Test
  void headerLengthLargerThanFile() throws IOException {
    Path f =
        RawSafetensors.writeWithLength(
            dir.resolve("longheader.safetensors"), 100, "{}".getBytes(StandardCharsets.UTF_8),
            new byte[0]);
    assertAllFail(f, null, "header length 100 bytes is larger than the file allows", "10 bytes");
  }

  @Test
  void headerLengthOverTheLimit() throws IOException {
    Path f =
        RawSafetensors.writeWithLength(
            dir.resolve("hugeheader.safetensors"), 100_000_001L, new byte[0], new byte[0]);
    assertAllFail(f, null, "header length 100000001 bytes exceeds the limit of 100000000");
    // The length is unsigned: all ones is 2^64 - 1, not -1.
    Path g =
        RawSafetensors.writeWithLength(
            dir.resolve("unsigned.safetensors"), -1L, new byte[0], new byte[0]);
    assertAllFail(g, null, "header length 18446744073709551615 bytes exceeds the limit");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "'{not json'|not valid JSON",
        "''|not valid JSON",
        "'   '|not valid JSON",
        "'{}  x'|not valid JSON",
        "'{\"a\":1,}'|not valid JSON",
        "'{\"a\":NaN}'|not valid JSON",
        "'[1,2]'|must be a JSON object, but is an array",
        "'\"str\"'|must be a JSON object, but is a string",
        "'null'|must be a JSON object, but is null",
        "'42'|must be a JSON object, but is an integer",
      })
  void headerNotAJsonObject(String header, String problem) throws IOException {
    Path f = raw("badjson.safetensors", header, new byte[0]);
    assertAllFail(f, null, problem);
  }

  @Test
  void headerNotUtf8() throws IOException {
    byte[] header = {'{', '"', (byte) 0xff, (byte) 0xfe, '"', ':', '1', '}'};
    Path f = RawSafetensors.write(dir.resolve("latin.safetensors"), header, new byte[0]);
    assertAllFail(f, null, "not valid UTF-8");
  }

  @Test
  void duplicateKeys() throws IOException {
    Path f =
        raw(
            "dup.safetensors",
            "{" + entry("w", "F32", "[1]", "[0,4]") + "," + entry("w", "F32", "[1]", "[4,8]") + "}",
            new byte[8]);
    assertAllFail(f, null, "not valid JSON", "Duplicate", "'w'");
  }

  @Test
  void entryNotAnObject() throws IOException {
    Path f = raw("notobj.safetensors", "{\"w\":[0,4]}", new byte[4]);
    assertAllFail(f, "w", "header entry must be an object, but is an array");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "'{\"shape\":[1],\"data_offsets\":[0,4]}'|missing \"dtype\"",
        "'{\"dtype\":\"F32\",\"data_offsets\":[0,4]}'|missing \"shape\"",
        "'{\"dtype\":\"F32\",\"shape\":[1]}'|missing \"data_offsets\"",
      })
  void entryMissingField(String body, String problem) throws IOException {
    Path f = raw("missing.safetensors", "{\"weight\":" + body + "}", new byte[4]);
    assertAllFail(f, "weight", problem);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "'{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}'|\"dtype\" must be a string, but is an integer",
        "'{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}'|\"dtype\" must be a string, but is null",
        "'{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}'|\"shape\" must be an array of integers, but is a string",
        "'{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}'|\"shape\" must be an array of integers, but is an object",
        "'{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}'|\"shape\"[0] must be an integer, but is a non-integer number",
        "'{\"dtype\":\"F32\",\"shape\":[1,\"1\"],\"data_offsets\":[0,4]}'|\"shape\"[1] must be an integer, but is a string",
        "'{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}'|\"shape\"[0] must be an integer",
        "'{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":4}'|\"data_offsets\" must be an array of two integers",
        "'{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}'|\"data_offsets\" must be an array of two integers",
        "'{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}'|\"data_offsets\" must be an array of two integers",
        "'{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}'|\"data_offsets\"[1] must be a non-negative integer, but is a non-integer number",
        "'{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}'|\"data_offsets\"[0] must be a non-negative integer, but is a string",
        "'{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}'|\"data_offsets\"[0] must be a non-negative integer, but is an integer (-4)",
      })
  void entryFieldOfWrongType(String body, String problem) throws IOException {
    Path f = raw("types.safetensors", "{\"weight\":" + body + "}", new byte[4]);
    assertAllFail(f, "weight", problem);
  }

  @Test
  void negativeDimension() throws IOException {
    Path f = raw("negdim.safetensors", "{" + entry("w", "F32", "[2,-3]", "[0,24]") + "}", new byte[24]);
    assertAllFail(f, "w", "negative dimension -3 at index 1");
  }

  @Test
  void shapeSizeOverflow() throws IOException {
    Path f =
        raw(
            "overflow.safetensors",
            "{" + entry("w", "F32", "[4294967296,4294967296]", "[0,4]") + "}",
            new byte[4]);
    assertAllFail(f, "w", "too large");
  }

  @Test
  void sizeMismatch() throws IOException {
    Path f = raw("size.safetensors", "{" + entry("w", "F32", "[2,3]", "[0,20]") + "}", new byte[20]);
    assertAllFail(f, "w", "size mismatch", "[2,3]", "F32", "needs 24 bytes", "span 20");
    Path g = raw("size16.safetensors", "{" + entry("h", "F16", "[3]", "[0,4]") + "}", new byte[4]);
    assertAllFail(g, "h", "size mismatch", "needs 6 bytes", "span 4");
    Path s = raw("sizescalar.safetensors", "{" + entry("s", "F64", "[]", "[0,4]") + "}", new byte[4]);
    assertAllFail(s, "s", "size mismatch", "needs 8 bytes");
  }

  @Test
  void beginAfterEnd() throws IOException {
    Path f = raw("reversed.safetensors", "{" + entry("w", "F32", "[1]", "[8,4]") + "}", new byte[8]);
    assertAllFail(f, "w", "data_offsets [8, 4] have begin > end");
  }

  @Test
  void rangeOutsideTheDataArea() throws IOException {
    Path f = raw("outside.safetensors", "{" + entry("w", "F32", "[4]", "[0,16]") + "}", new byte[8]);
    assertAllFail(f, "w", "data_offsets [0, 16] are outside the data area, which is 8 bytes");
  }

  @Test
  void overlappingRanges() throws IOException {
    Path f =
        raw(
            "overlap.safetensors",
            "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}",
            new byte[12]);
    assertAllFail(f, "b", "overlap tensor 'a'", "[4, 12]", "[0, 8]");
    Path g =
        raw(
            "same.safetensors",
            "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[0,4]") + "}",
            new byte[4]);
    assertAllFail(g, "b", "overlap tensor 'a'");
  }

  @Test
  void gapsAndUnindexedBytesAreRejected() throws IOException {
    Path between =
        raw(
            "gap.safetensors",
            "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[8,12]") + "}",
            new byte[12]);
    assertAllFail(between, "b", "gap", "[4, 8)", "not covered by any tensor");
    Path leading = raw("lead.safetensors", "{" + entry("a", "F32", "[1]", "[4,8]") + "}", new byte[8]);
    assertAllFail(leading, "a", "gap", "[0, 4)");
    Path trailing = raw("trail.safetensors", "{" + entry("a", "F32", "[1]", "[0,4]") + "}", new byte[8]);
    assertAllFail(trailing, null, "data area is 8 bytes but the tensors cover only 4", "[4, 8)");
    Path noTensors = raw("onlydata.safetensors", "{}", new byte[3]);
    assertAllFail(noTensors, null, "data area is 3 bytes but the tensors cover only 0");
  }

  @Test
  void badMetadata() throws IOException {
    Path f = raw("metanum.safetensors", "{\"__metadata__\":{\"epoch\":3}}", new byte[0]);
    assertAllFail(f, null, "__metadata__ value for key 'epoch' must be a string, but is an integer");
    Path g = raw("metaarr.safetensors", "{\"__metadata__\":[\"a\"]}", new byte[0]);
    assertAllFail(g, null, "__metadata__ must be an object of strings, but is an array");
  }

  @Test
  void missingTensorListsTheAvailableNames() throws IOException {
    Path f =
        raw(
            "names.safetensors",
            "{" + entry("beta", "F32", "[1]", "[4,8]") + "," + entry("alpha", "F32", "[1]", "[0,4]") + "}",
            f32(1, 2));
    assertFails(
        f, "gamma", () -> Safetensors.read(f, "gamma"), "no such tensor", "2 tensor(s): [alpha, beta]");
  }

  @Test
  void validEdgeCasesAreAccepted() throws IOException {
    // Header padded with spaces (and leading whitespace), empty tensors sharing an offset, unknown
    // extra keys in an entry, and a file with metadata only.
    Path f =
        raw(
            "edges.safetensors",
            " {" + entry("e1", "F32", "[0]", "[4,4]") + "," + entry("e2", "F16", "[2,0]", "[4,4]") + ","
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":true}}   ",
            f32(9));
    Map<String, dev.mosaic.kernels.Tensor> all = Safetensors.read(f);
    assertEquals(3, all.size());
    assertEquals(9f, all.get("w").data()[0]);
    assertEquals(0, all.get("e2").size());
    Path m = raw("metaonly.safetensors", "{\"__metadata__\":{}}", new byte[0]);
    assertEquals(Map.of(), Safetensors.read(m));
    assertEquals(Map.of(), Safetensors.metadata(m));
  }
}
