package dev.mosaic.kernels.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * numpy itself loads the {@code .npy} and {@code .npz} files Mosaic writes and finds the same
 * float32 bits. The interpreter is {@code $MOSAIC_PYTHON} (CI's venv), else Debian's {@code
 * /usr/bin/python3}; the test is skipped where neither imports numpy.
 */
class NumpyInteropTest {
  @TempDir Path dir;

  private static final String CHECK = String.join("\n",
      "import sys",
      "try:",
      "    import numpy as np",
      "except ImportError:",
      "    print('numpy is not importable'); sys.exit(3)",
      "npy, npz, expected = sys.argv[1:4]",
      "ref = np.load(expected)  # a raw little-endian float32 dump of the same numbers",
      "y = np.load(npy)",
      "assert y.dtype == np.float32 and y.shape == (3, 5, 7), (y.dtype, y.shape)",
      "assert y.tobytes() == ref[:105].tobytes()",
      "z = np.load(npz)",
      "assert list(z.keys()) == ['y', 'out_proj.weight'], list(z.keys())",
      "assert z['y'].tobytes() == y.tobytes()",
      "assert z['out_proj.weight'].shape == (4, 4)",
      "assert z['out_proj.weight'].tobytes() == ref[105:].tobytes()",
      "print('ok')");

  @Test
  void numpyLoadsWhatMosaicWrites() throws IOException, InterruptedException {
    Random rnd = TestSeed.random();
    Tensor y = Tensor.randn(rnd, 1f, 3, 5, 7);
    Tensor w = Tensor.randn(rnd, 1f, 4, 4);
    Path npy = dir.resolve("y.npy");
    Path npz = dir.resolve("all.npz");
    NpyFile.write(npy, y);
    Map<String, Tensor> both = new LinkedHashMap<>();
    both.put("y", y);
    both.put("out_proj.weight", w);
    NpzFile.write(npz, both);
    // The reference numbers travel as a plain 1-d .npy of raw bytes written without NpyFile's
    // header code (a fixed 128-byte header), so a header bug cannot hide on both sides.
    float[] all = new float[105 + 16];
    System.arraycopy(y.data(), 0, all, 0, 105);
    System.arraycopy(w.data(), 0, all, 105, 16);
    Path ref = dir.resolve("ref.npy");
    Files.write(ref, rawNpy(all));
    assertEquals("ok", python(CHECK, npy.toString(), npz.toString(), ref.toString()).strip());
  }

  private static byte[] rawNpy(float[] v) {
    String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + v.length + ",), }";
    String header = dict + " ".repeat(128 - 10 - dict.length() - 1) + "\n";
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(128 + v.length * 4)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) 118);
    b.put(header.getBytes(StandardCharsets.US_ASCII));
    for (float f : v) {
      b.putFloat(f);
    }
    return b.array();
  }

  private String python(String script, String... args) throws IOException, InterruptedException {
    String env = System.getenv("MOSAIC_PYTHON");
    String exe = env != null && !env.isBlank() ? env
        : Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
    Path py = dir.resolve("check.py");
    Files.writeString(py, script);
    List<String> cmd = new java.util.ArrayList<>(List.of(exe, py.toString()));
    cmd.addAll(List.of(args));
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      Assumptions.abort("no Python interpreter (" + exe + "): " + e.getMessage());
      throw e;
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "python timed out");
    Assumptions.assumeFalse(p.exitValue() == 3, () -> "skipped: " + out.strip());
    assertEquals(0, p.exitValue(), () -> exe + " failed:\n" + out);
    return out;
  }
}
