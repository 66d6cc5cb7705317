package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.BackwardSupport;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The backward CLI contract, {@code mosaic attention … --grad-output G --grads-output GR},
 * through real files, against PyTorch autograd's gradients of {@code sum(y·dy)} (the layer
 * fixtures of {@code tools/fixtures/backward_fixtures.py}).
 */
class AttentionGradientsCommandTest {
  /** fp32 through layers of E ≤ 24 over ≤ 35 positions: ~1e-6; the contract's bound is 1e-4. */
  private static final double TOL = 1e-4;

  @TempDir
  Path dir;

  private static Map<String, Tensor> fixture(String name) {
    try {
      return Safetensors.read(Path.of(AttentionGradientsCommandTest.class
          .getResource("/fixtures/backward/layer_" + name + ".safetensors").toURI()));
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** x, weights and dy of a fixture as files of the given extension; the CLI's arguments. */
  private List<String> args(Map<String, Tensor> t, String ext, String... flags) {
    Path x = dir.resolve("x" + ext);
    Path w = dir.resolve("w" + (ext.equals(".npy") ? ".npz" : ext));
    Path g = dir.resolve("g" + ext);
    TensorFiles.write(x, Map.of("x", t.get("x")));
    TensorFiles.write(w, AttentionWeights.from(t, "", t.get("x").dim(-1)).toMap(""));
    TensorFiles.write(g, Map.of("dy", t.get("dy")));
    List<String> a = new ArrayList<>(List.of("attention", "--input", x.toString(), "--weights",
        w.toString(), "--output", dir.resolve("y" + ext).toString(), "--grad-output",
        g.toString(), "--threads", "2"));
    a.addAll(List.of(flags));
    return a;
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "axis1_causal              | .safetensors | --num-heads 3 --axis 1 --causal",
      "axis_neg3_keybound        | .npz         | --num-heads 4 --axis -3 --key-limit 6",
      "axis_neg2_causal_keybound | .npy         | --num-heads 5 --axis -2 --causal --key-limit 10",
      "two_axis_causal           | .safetensors | --num-heads 2 --axis 2 --axis2 0 --causal"})
  void localGradientsEqualPyTorch(String name, String ext, String flags) {
    Map<String, Tensor> t = fixture(name);
    Path gr = dir.resolve("gr" + (ext.equals(".npy") ? ".npz" : ext));
    List<String> a = args(t, ext, flags.split(" "));
    a.addAll(List.of("--grads-output", gr.toString(), "--backend", Backends.LOCAL));
    Result r = run(a);
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("wrote dx, in_proj_weight, in_proj_bias, out_proj.weight,"
        + " out_proj.bias to " + gr), r.out());
    check(name, "y", TensorFiles.read(dir.resolve("y" + ext), "y"), t.get("y"));
    Map<String, Tensor> grads = TensorFiles.readAll(gr);
    assertEquals(List.of("dx", "in_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias"), List.copyOf(grads.keySet()));
    check(name, "dx", grads.get("dx"), t.get("dx"));
    for (String p : List.of("in_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias")) {
      check(name, p, grads.get(p), t.get("grad." + p));
    }
  }

  /**
   * Every distributed backend that claims a backward ({@link BackwardSupport#BACKENDS}) gives
   * the same gradients over two Spark barrier tasks. With only {@code local} claiming one, this
   * checks nothing; it runs as soon as a distributed strategy implements the seam.
   */
  @Test
  void distributedBackendsWithABackwardEqualPyTorch() {
    Map<String, Tensor> t = fixture("axis1_causal");
    for (String backend : BackwardSupport.BACKENDS) {
      if (backend.equals(Backends.LOCAL)) {
        continue;
      }
      Path gr = dir.resolve("gr-" + backend + ".safetensors");
      List<String> a = args(t, ".safetensors", "--num-heads", "3", "--axis", "1", "--causal");
      // Ulysses splits the 3 heads over the ranks: 3 tasks, not 2.
      String sp = backend.equals(Backends.ULYSSES) ? "3" : "2";
      a.addAll(List.of("--grads-output", gr.toString(), "--backend", backend, "--sp", sp));
      Result r = run(a);
      assertEquals(0, r.code(), backend + ": " + r.err());
      Map<String, Tensor> grads = TensorFiles.readAll(gr);
      check(backend, "dx", grads.get("dx"), t.get("dx"));
      for (String p : List.of("in_proj_weight", "in_proj_bias", "out_proj.weight",
          "out_proj.bias")) {
        check(backend, p, grads.get(p), t.get("grad." + p));
      }
    }
  }

  /** A backend without a backward fails in one line: the strategy's own refusal. */
  @Test
  void aStrategyWithoutABackwardRefusesInOneLine() {
    String backend = null;
    for (String b : List.of(Backends.HIERARCHICAL, Backends.MESH2D, Backends.RING)) {
      if (!BackwardSupport.BACKENDS.contains(b)) {
        backend = b;
        break;
      }
    }
    if (backend == null) {
      return; // every strategy has a backward: nothing to refuse
    }
    Map<String, Tensor> t = fixture("axis0");
    List<String> a = args(t, ".safetensors", "--num-heads", "2", "--axis", "0");
    a.addAll(List.of("--grads-output", dir.resolve("gr.safetensors").toString(), "--backend",
        backend, "--sp", "2", "--threads", "1"));
    if (backend.equals(Backends.MESH2D)) {
      a.addAll(List.of("--mesh", "1x2"));
      a.removeAll(List.of("--sp"));
    }
    Result r = run(a);
    assertNotEquals(0, r.code(), r.out());
    String line = r.err().strip();
    assertEquals(1, line.lines().count(), line);
    assertTrue(line.startsWith("mosaic attention: error: strategy ")
        && line.contains(" has no backward pass; backends with one: "
            + String.join(", ", BackwardSupport.BACKENDS)), line);
  }

  @Test
  void badGradientFlagsAreOneLineUsageErrors() {
    Map<String, Tensor> t = fixture("axis0");
    List<String> a = args(t, ".safetensors", "--num-heads", "2", "--axis", "0");
    assertError("mosaic attention: error: --grad-output G (dy) and --grads-output GR (the"
        + " gradients) go together; got only --grad-output", a);
    List<String> npy = new ArrayList<>(a);
    npy.addAll(List.of("--grads-output", dir.resolve("gr.npy").toString()));
    assertError("mosaic attention: error: --grads-output " + dir.resolve("gr.npy") + ": the"
        + " gradients are 5 named tensors (dx, in_proj_weight, in_proj_bias, out_proj.weight,"
        + " out_proj.bias); give a .npz or safetensors file, not one .npy array", npy);
    Path g = dir.resolve("g.safetensors");
    Safetensors.write(g, Map.of("dy", Tensor.zeros(11, 3, 8)));
    List<String> shape = new ArrayList<>(a);
    shape.addAll(List.of("--grads-output", dir.resolve("gr.safetensors").toString()));
    assertError("mosaic attention: error: tensor 'dy' in " + g + " must have y's shape"
        + " [11, 3, 16], got [11, 3, 8]", shape);
  }

  private static void assertError(String expected, List<String> args) {
    Result r = run(args);
    assertEquals(2, r.code(), r.out());
    assertEquals(expected, r.err().strip());
  }

  private static void check(String fixture, String what, Tensor actual, Tensor expected) {
    assertArrayEquals(expected.shape(), actual.shape(), fixture + " " + what + " shape");
    double err = RelativeError.of(actual, expected);
    System.out.printf("%s %s: relative error %.2e%n", fixture, what, err);
    assertTrue(err < TOL, fixture + " " + what + ": relative error " + err);
  }
}
