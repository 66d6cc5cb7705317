package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.spark.cli.CliRun.Result;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mosaic attention --kv-input}: through real files against the PyTorch cross-attention
 * fixture ({@code tools/fixtures/cross_attention_fixtures.py}, causal, 13 queries over 6 keys
 * along axis 1). Tolerances as in {@code CrossAxisAttentionFixturesTest}: 1e-5 for y, 1e-4 for
 * the gradients (fp32 sums of O(n·E) products, ~1e-6 norm-wise).
 */
class CrossAttentionCommandTest {
  @TempDir
  Path dir;
  private Map<String, Tensor> fx;
  private String x;
  private String kv;
  private String w;

  @BeforeEach
  void files() throws URISyntaxException {
    fx = Safetensors.read(Path.of(getClass()
        .getResource("/fixtures/cross/cross_axis1_causal.safetensors").toURI()));
    x = dir.resolve("x.safetensors").toString();
    kv = dir.resolve("kv.npy").toString(); // one NumPy array: its name does not matter
    w = dir.resolve("w.safetensors").toString();
    Safetensors.write(Path.of(x), Map.of("x", fx.get("x")));
    TensorFiles.write(Path.of(kv), Map.of("kv", fx.get("kv")));
    Safetensors.write(Path.of(w), Map.of("in_proj_weight", fx.get("in_proj_weight"),
        "in_proj_bias", fx.get("in_proj_bias"), "out_proj.weight", fx.get("out_proj.weight"),
        "out_proj.bias", fx.get("out_proj.bias")));
  }

  @Test
  void forwardAndGradientsEqualPyTorch() {
    Path dy = dir.resolve("dy.safetensors");
    Safetensors.write(dy, Map.of("dy", fx.get("dy")));
    Path y = dir.resolve("y.safetensors");
    Path grads = dir.resolve("grads.safetensors");
    Result r = run("attention", "--input", x, "--kv-input", kv, "--weights", w, "--output",
        y.toString(), "--num-heads", "3", "--axis", "1", "--causal", "--threads", "2",
        "--grad-output", dy.toString(), "--grads-output", grads.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("cross-attention over kv [2, 6, 3, 24]"), r.out());
    check("y", Safetensors.read(y, "y"), fx.get("y"), 1e-5);
    Map<String, Tensor> g = Safetensors.read(grads);
    assertEquals(List.of("dkv", "dx", "in_proj_bias", "in_proj_weight", "out_proj.bias",
        "out_proj.weight"), g.keySet().stream().sorted().toList());
    check("dx", g.get("dx"), fx.get("dx"), 1e-4);
    check("dkv", g.get("dkv"), fx.get("dkv"), 1e-4);
    for (String p : List.of("in_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias")) {
      check(p, g.get(p), fx.get("grad." + p), 1e-4);
    }
  }

  @Test
  void refusalsAndBadShapesAreOneLine() {
    String y = dir.resolve("y.safetensors").toString();
    assertError("mosaic attention: error: --kv-input runs with --backend local, got --backend"
        + " ring; across ranks use the Java API: CrossAxisAttention with a RingStrategy(comm,"
        + " queryLayout, keyLayout, kernel)", "attention", "--input", x, "--kv-input", kv,
        "--weights", w, "--output", y, "--num-heads", "3", "--axis", "1", "--backend", "ring");
    assertError("mosaic attention: error: --key-limit bounds self-attention keys and does not go"
        + " with --kv-input", "attention", "--input", x, "--kv-input", kv, "--weights", w,
        "--output", y, "--num-heads", "3", "--axis", "1", "--key-limit", "3");
    // kv is (2, 6, 3, 24): along axis 2 the other axes differ (13 queries vs 6 keys on axis 1)
    assertError("mosaic attention: error: kv has shape [2, 6, 3, 24] but x has [2, 13, 3, 24]:"
        + " expected equal sizes on every axis except the attention axis 2 (axis 1 differs)",
        "attention", "--input", x, "--kv-input", kv, "--weights", w, "--output", y,
        "--num-heads", "3", "--axis", "2");
    assertError("mosaic attention: error: --kv-input " + dir.resolve("nope.npy")
        + ": no such file", "attention", "--input", x, "--kv-input",
        dir.resolve("nope.npy").toString(), "--weights", w, "--output", y, "--num-heads", "3",
        "--axis", "1");
  }

  private static void assertError(String expected, String... args) {
    Result r = run(args);
    assertEquals(2, r.code(), r.out());
    assertEquals(expected, r.err().strip());
  }

  private static void check(String what, Tensor actual, Tensor expected, double tol) {
    assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
    double err = RelativeError.of(actual, expected);
    assertTrue(err < tol, what + ": relative error " + err + " (tolerance " + tol + ")");
  }
}
