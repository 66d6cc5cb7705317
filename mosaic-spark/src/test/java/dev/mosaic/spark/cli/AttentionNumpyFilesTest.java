package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.NpyFile;
import dev.mosaic.kernels.io.NpzFile;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.NaiveMultiAxisAttention;
import dev.mosaic.test.TestSeed;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code mosaic attention} reads and writes .npy and .npz as well as safetensors (issue #16). */
class AttentionNumpyFilesTest {
  @TempDir Path dir;
  private final Random rnd = TestSeed.random();

  private AttentionWeights weights(int e) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e), Tensor.randn(rnd, 0.1f, 3 * e),
        Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
  }

  @Test
  void npyInputNpzWeightsEachOutputFormat() {
    Tensor x = Tensor.randn(rnd, 1f, 2, 19, 16);
    AttentionWeights w = weights(16);
    Path in = dir.resolve("x.npy");
    Path wf = dir.resolve("w.npz");
    NpyFile.write(in, x);
    NpzFile.write(wf, w.toMap(""));
    Tensor expected = NaiveMultiAxisAttention.forward(x, w, 2, 1, false, Long.MAX_VALUE);
    for (String name : new String[] {"y.npy", "y.npz", "y.safetensors"}) {
      Path out = dir.resolve(name);
      Result r = run("attention", "--input", in.toString(), "--weights", wf.toString(),
          "--output", out.toString(), "--num-heads", "2", "--axis", "1", "--threads", "1");
      assertEquals(0, r.code(), r.err());
      Tensor y = switch (name) {
        case "y.npy" -> NpyFile.read(out);
        case "y.npz" -> NpzFile.read(out, "y");
        default -> Safetensors.read(out, "y");
      };
      assertArrayEquals(x.shape(), y.shape(), name);
      double err = RelativeError.of(y, expected);
      assertTrue(err < 1e-5, name + ": relative error " + err);
    }
  }

  @Test
  void oneNpzHoldsInputAndWeights() {
    Tensor x = Tensor.randn(rnd, 1f, 11, 8);
    AttentionWeights w = weights(8);
    Map<String, Tensor> all = new LinkedHashMap<>();
    all.put("x", x);
    all.putAll(w.toMap("attn."));
    Path f = dir.resolve("all.npz");
    NpzFile.write(f, all);
    Path out = dir.resolve("y.npy");
    Result r = run("attention", "--input", f.toString(), "--weights", f.toString(),
        "--weights-prefix", "attn.", "--output", out.toString(), "--num-heads", "2", "--axis", "0",
        "--causal", "--threads", "1");
    assertEquals(0, r.code(), r.err());
    double err = RelativeError.of(NpyFile.read(out),
        NaiveMultiAxisAttention.forward(x, w, 2, 0, true, Long.MAX_VALUE));
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void unreadableNumpyFilesAreOneLineUsageErrors() throws Exception {
    Path wf = dir.resolve("w.npz");
    NpzFile.write(wf, weights(8).toMap(""));
    Path ints = dir.resolve("ints.npy");
    // numpy's own bytes for np.save(f, np.arange(3, dtype=np.int64)), header padded to 128
    String dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
    String header = dict + " ".repeat(128 - 10 - dict.length() - 1) + "\n";
    byte[] head = ("\u0093NUMPY\u0001\u0000v\u0000" + header).getBytes(StandardCharsets.ISO_8859_1);
    byte[] file = new byte[head.length + 24];
    System.arraycopy(head, 0, file, 0, head.length);
    Files.write(ints, file);
    Path out = dir.resolve("y.npy");
    Result r = run("attention", "--input", ints.toString(), "--weights", wf.toString(),
        "--output", out.toString(), "--num-heads", "2", "--axis", "0");
    assertEquals(2, r.code(), r.err());
    assertEquals("mosaic attention: error: tensor file " + ints + ": dtype '<i8' is not supported"
        + " (expected float32 '<f4' or float64 '<f8'); save a.astype(np.float32)\n", r.err());

    Path x = dir.resolve("x.npy");
    NpyFile.write(x, Tensor.randn(rnd, 1f, 4, 8));
    r = run("attention", "--input", x.toString(), "--weights", x.toString(),
        "--output", out.toString(), "--num-heads", "2", "--axis", "0");
    assertEquals(2, r.code(), r.err());
    assertEquals("mosaic attention: error: --weights " + x + ": the weights are four named"
        + " tensors; give a .npz or safetensors file, not one .npy array\n", r.err());

    Path missing = dir.resolve("w2.npz");
    NpzFile.write(missing, Map.of("x", Tensor.zeros(2)));
    r = run("attention", "--input", x.toString(), "--weights", missing.toString(),
        "--output", out.toString(), "--num-heads", "2", "--axis", "0");
    assertEquals(2, r.code(), r.err());
    assertEquals("mosaic attention: error: weight 'in_proj_weight' is missing; the weights hold"
        + " [x]\n", r.err());
  }
}
