package dev.mosaic.kernels.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Golden checks against other implementations, run only where they exist (skipped otherwise):
 *
 * <ul>
 *   <li>a plain-Python (stdlib {@code struct} and {@code json}) writer, whose F16 encoding is
 *       CPython's own, and a plain-Python reader of files we write;
 *   <li>the real {@code safetensors} Python package (with numpy), if it is importable: a file it
 *       saves is read here, and a file written here is loaded by it.
 * </ul>
 *
 * <p>The interpreter is {@code python3}, or {@code $MOSAIC_PYTHON} when set. Nothing is installed.
 */
class SafetensorsInteropTest {
  @TempDir Path dir;

  private static final ObjectMapper JSON = new ObjectMapper();

  private static String python() {
    String p = System.getenv("MOSAIC_PYTHON");
    return p == null || p.isBlank() ? "python3" : p;
  }

  /** Why the last script asked to be skipped (exit 3), so that the same script is not rerun. */
  private static final Map<String, String> SKIPPED = new java.util.concurrent.ConcurrentHashMap<>();

  /** Runs {@code script} with args; skips the test if Python is missing or exits with 3. */
  private String runPython(String script, String... args) throws IOException, InterruptedException {
    String skipped = SKIPPED.get(script);
    Assumptions.assumeTrue(skipped == null, () -> "skipped by the script: " + skipped);
    Path py = Files.createTempFile(dir, "script", ".py");
    Files.writeString(py, script);
    List<String> cmd = new ArrayList<>(List.of(python(), py.toString()));
    cmd.addAll(List.of(args));
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.PIPE).start();
    } catch (IOException e) {
      Assumptions.abort("no Python interpreter (" + python() + "): " + e.getMessage());
      throw e;
    }
    p.getOutputStream().close();
    byte[] out = p.getInputStream().readAllBytes();
    byte[] err = p.getErrorStream().readAllBytes();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS), "python timed out");
    String stdout = new String(out, StandardCharsets.UTF_8);
    String stderr = new String(err, StandardCharsets.UTF_8);
    if (p.exitValue() == 3) {
      SKIPPED.put(script, stdout.trim());
      Assumptions.abort("skipped by the script: " + stdout.trim());
    }
    assertEquals(0, p.exitValue(), () -> "python failed:\n" + stdout + "\n" + stderr);
    return stdout;
  }

  /** A value printed by Python's float.hex (or 'inf', '-inf', 'nan'), rounded to float. */
  private static float parsePyFloat(String s) {
    switch (s) {
      case "inf":
        return Float.POSITIVE_INFINITY;
      case "-inf":
        return Float.NEGATIVE_INFINITY;
      case "nan":
      case "-nan":
        return Float.NaN;
      default:
        return (float) Double.parseDouble(s);
    }
  }

  /** Compares a {"shape": [...], "values": [hex...]} node with a tensor, bit for bit. */
  private static void assertMatches(String name, JsonNode expected, Tensor actual) {
    int[] shape = new int[expected.get("shape").size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = expected.get("shape").get(i).intValue();
    }
    assertArrayEquals(shape, actual.shape(), name + " shape");
    JsonNode values = expected.get("values");
    float[] data = actual.data();
    assertEquals(values.size(), data.length, name + " size");
    for (int i = 0; i < data.length; i++) {
      float e = parsePyFloat(values.get(i).textValue());
      if (Float.isNaN(e)) {
        assertTrue(Float.isNaN(data[i]), name + "[" + i + "] should be NaN, is " + data[i]);
      } else {
        assertEquals(
            Float.floatToIntBits(e),
            Float.floatToIntBits(data[i]),
            name + "[" + i + "]: expected " + e + " (" + values.get(i).textValue() + "), got "
                + data[i]);
      }
    }
  }

  private static final String STDLIB_WRITER =
      """
      import json, struct, sys
      path = sys.argv[1]
      inf, nan = float('inf'), float('nan')

      def chunks(data, size):
          return [data[i:i + size] for i in range(0, len(data), size)]

      tensors = {}
      f16 = [0.0, -0.0, 1.0, -2.0, 1 / 3, 2.0**-24, -(2.0**-24), 1023 * 2.0**-24,
             2.0**-14, 65504.0, -65504.0, inf, -inf, nan, 0.1, 1e-6]
      raw = b''.join(struct.pack('<e', v) for v in f16)
      tensors['half'] = ('F16', [4, 4], raw, [struct.unpack('<e', c)[0] for c in chunks(raw, 2)])

      f32src = [3.14159, -0.0, 1e-40, 2.5e38, -7.75, 0.1, inf, nan]
      bits = [struct.unpack('<I', struct.pack('<f', v))[0] >> 16 for v in f32src]
      raw = b''.join(struct.pack('<H', b) for b in bits)
      tensors['brain'] = ('BF16', [2, 2, 2], raw,
                          [struct.unpack('<f', struct.pack('<I', b << 16))[0] for b in bits])

      f64 = [3.141592653589793, -1e300, 1e-50, 0.1, nan, -0.0, 65504.000001]
      raw = b''.join(struct.pack('<d', v) for v in f64)
      tensors['double'] = ('F64', [7], raw, f64)

      f32 = [1.5, -2.25, 1e-45, 3.4028234663852886e38]
      raw = b''.join(struct.pack('<f', v) for v in f32)
      tensors['single'] = ('F32', [2, 1, 2], raw, [struct.unpack('<f', c)[0] for c in chunks(raw, 4)])
      raw = struct.pack('<f', 42.0)
      tensors['scalar'] = ('F32', [], raw, [42.0])
      tensors['empty'] = ('F16', [3, 0], b'', [])

      header, data, expected = {'__metadata__': {'source': 'python-stdlib'}}, b'', {}
      for name in sorted(tensors):
          dtype, shape, raw, values = tensors[name]
          header[name] = {'dtype': dtype, 'shape': shape,
                          'data_offsets': [len(data), len(data) + len(raw)]}
          data += raw
          expected[name] = {'shape': shape, 'values': [float.hex(v) for v in values]}
      hb = json.dumps(header).encode('utf-8')  # default separators, unlike Jackson's
      hb += b' ' * ((8 - (8 + len(hb)) % 8) % 8)
      with open(path, 'wb') as f:
          f.write(struct.pack('<Q', len(hb)) + hb + data)
      print(json.dumps({'tensors': expected, 'order': sorted(tensors)}))
      """;

  @Test
  void readsFileWrittenByPlainPython() throws Exception {
    Path f = dir.resolve("from-python.safetensors");
    JsonNode expected = JSON.readTree(runPython(STDLIB_WRITER, f.toString()));
    Map<String, Tensor> all = Safetensors.read(f);
    List<String> order = new ArrayList<>();
    expected.get("order").forEach(n -> order.add(n.textValue()));
    // Offset order; "empty" has zero bytes at the offset where "half" begins, so it sorts first.
    List<String> expectedOrder = new ArrayList<>(List.of("brain", "double", "empty", "half"));
    expectedOrder.addAll(List.of("scalar", "single"));
    assertEquals(expectedOrder, order);
    assertEquals(List.copyOf(order), List.copyOf(all.keySet()));
    for (String name : order) {
      assertMatches(name, expected.get("tensors").get(name), all.get(name));
    }
    assertEquals(Map.of("source", "python-stdlib"), Safetensors.metadata(f));
  }

  private static final String STDLIB_READER =
      """
      import json, struct, sys
      data = open(sys.argv[1], 'rb').read()
      n = struct.unpack('<Q', data[:8])[0]
      assert (8 + n) % 8 == 0, 'header not aligned'
      text = data[8:8 + n].decode('utf-8')
      assert len(text) - len(text.rstrip(' ')) < 8, 'too much padding'
      header = json.loads(text)
      metadata = header.pop('__metadata__', {})
      body = data[8 + n:]
      pos, out = 0, {}
      for name, e in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
          assert e['dtype'] == 'F32', e
          begin, end = e['data_offsets']
          assert begin == pos, (name, begin, pos)
          count = 1
          for d in e['shape']:
              count *= d
          assert end - begin == 4 * count, name
          values = struct.unpack('<%df' % count, body[begin:end])
          out[name] = {'shape': e['shape'], 'values': [float.hex(v) for v in values]}
          pos = end
      assert pos == len(body), 'unindexed bytes'
      print(json.dumps({'tensors': out, 'metadata': metadata, 'order': list(header)}))
      """;

  private static Map<String, Tensor> sampleTensors() {
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("z.last_in_name_order", Tensor.of(new float[] {1.5f, -0f, Float.MIN_VALUE, 1e30f}, 2, 2));
    in.put("a.scalar", Tensor.of(new float[] {-3.25f}));
    in.put("m.empty", Tensor.zeros(4, 0));
    in.put(
        "b.special",
        Tensor.of(new float[] {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
          Float.MAX_VALUE, 0.1f, (float) Math.PI}, 1, 2, 3));
    return in;
  }

  @Test
  void plainPythonReadsFileWeWrite() throws Exception {
    Path f = dir.resolve("to-python.safetensors");
    Map<String, Tensor> in = sampleTensors();
    Safetensors.write(f, in, Map.of("writer", "mosaic", "ünicode", "✓"));
    JsonNode got = JSON.readTree(runPython(STDLIB_READER, f.toString()));
    assertEquals("mosaic", got.get("metadata").get("writer").textValue());
    assertEquals("✓", got.get("metadata").get("ünicode").textValue());
    List<String> order = new ArrayList<>();
    got.get("order").forEach(n -> order.add(n.textValue()));
    assertEquals(List.copyOf(in.keySet()), order, "header keeps the map's order");
    for (Map.Entry<String, Tensor> e : in.entrySet()) {
      assertMatches(e.getKey(), got.get("tensors").get(e.getKey()), e.getValue());
    }
  }

  private static final String REAL_LIBRARY =
      """
      import json, sys
      try:
          from safetensors import safe_open
          import numpy as np
          from safetensors.numpy import load_file, save_file
      except Exception as e:
          print('safetensors/numpy not importable:', repr(e))
          sys.exit(3)

      def describe(arrays):
          return {k: {'shape': list(a.shape),
                      'values': [float.hex(float(x)) for x in a.astype(np.float64).ravel()]}
                  for k, a in arrays.items()}

      mode, path = sys.argv[1], sys.argv[2]
      if mode == 'write':
          arrays = {
              'half': np.array([0.0, -0.0, 2.0**-24, 65504.0, np.inf, np.nan], dtype=np.float16)
                  .reshape(2, 3),
              'single': (np.arange(12, dtype=np.float32) / np.float32(7)).reshape(3, 4),
              'double': np.array([np.pi, -1e300, 1e-50, 0.1], dtype=np.float64),
              'scalar': np.array(1.5, dtype=np.float32),
              'empty': np.zeros((2, 0), dtype=np.float32),
          }
          save_file(arrays, path, metadata={'format': 'np', 'k': 'v'})
          print(json.dumps({'tensors': describe(arrays)}))
      else:
          arrays = load_file(path)
          with safe_open(path, framework='np') as f:
              metadata = f.metadata() or {}
              dtypes = {k: str(f.get_tensor(k).dtype) for k in f.keys()}
          print(json.dumps({'tensors': describe(arrays), 'metadata': metadata, 'dtypes': dtypes}))
      """;

  @Test
  void readsFileSavedByTheSafetensorsLibrary() throws Exception {
    Path f = dir.resolve("from-library.safetensors");
    JsonNode expected = JSON.readTree(runPython(REAL_LIBRARY, "write", f.toString()));
    Map<String, Tensor> all = Safetensors.read(f);
    assertEquals(5, all.size());
    for (Map.Entry<String, JsonNode> e : expected.get("tensors").properties()) {
      assertMatches(e.getKey(), e.getValue(), all.get(e.getKey()));
    }
    assertEquals(Map.of("format", "np", "k", "v"), Safetensors.metadata(f));
  }

  @Test
  void theSafetensorsLibraryLoadsFileWeWrite() throws Exception {
    Path f = dir.resolve("to-library.safetensors");
    Map<String, Tensor> in = sampleTensors();
    Safetensors.write(f, in, Map.of("writer", "mosaic"));
    JsonNode got = JSON.readTree(runPython(REAL_LIBRARY, "read", f.toString()));
    assertEquals("mosaic", got.get("metadata").get("writer").textValue());
    for (Map.Entry<String, Tensor> e : in.entrySet()) {
      assertEquals("float32", got.get("dtypes").get(e.getKey()).textValue());
      assertMatches(e.getKey(), got.get("tensors").get(e.getKey()), e.getValue());
    }
  }
}
