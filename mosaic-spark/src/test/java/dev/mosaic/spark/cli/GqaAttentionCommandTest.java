package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.GqaLayerTest;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code mosaic attention … --num-heads H --num-kv-heads G} with Hugging Face-style
 * {@code q_proj/k_proj/v_proj/o_proj} weights, through real files, against the PyTorch fixtures
 * of {@code tools/fixtures/gqa_fixtures.py} (forward and the backward's renamed gradients), and
 * its one-line errors. Tolerance: fp32 through layers of E ≤ 24 over ≤ 13 positions, ~1e-6;
 * the contract's bound is 1e-4 (as in {@link AttentionGradientsCommandTest}).
 */
class GqaAttentionCommandTest {
  private static final double TOL = 1e-4;

  @TempDir
  Path dir;

  private static Path fixture(String name) {
    try {
      return Path.of(GqaAttentionCommandTest.class
          .getResource("/fixtures/gqa/layer_" + name + ".safetensors").toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The fixture file is both --input (tensor x) and --weights (the *_proj tensors). */
  private List<String> args(Path file, String... flags) {
    List<String> a = new ArrayList<>(List.of("attention", "--input", file.toString(),
        "--weights", file.toString(), "--output", dir.resolve("y.safetensors").toString(),
        "--threads", "2"));
    a.addAll(List.of(flags));
    return a;
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "h6_g2_bias       | --num-heads 6 --num-kv-heads 2 --axis 1",
      "mqa_h4_g1_causal | --num-heads 4 --num-kv-heads 1 --axis 0 --causal",
      "h6_g3_nobias     | --num-heads 6 --num-kv-heads 3 --axis -2",
      "h6_g3_nobias     | --num-heads 6 --axis -2",
      // Spark barrier stages: the ring sends the 2 K/V heads; Ulysses replicates MQA's one
      "h6_g2_bias       | --num-heads 6 --num-kv-heads 2 --axis 1 --backend ring --sp 2",
      "mqa_h4_g1_causal | --num-heads 4 --num-kv-heads 1 --axis 0 --causal --backend ulysses"
          + " --sp 2",
      // the planner's choice among the strategies that run 2 K/V heads
      "h6_g2_bias       | --num-heads 6 --num-kv-heads 2 --axis 1 --backend auto --sp 2"})
  void forwardAndGradientsEqualPyTorch(String name, String flags) {
    Path file = fixture(name);
    Map<String, Tensor> t = Safetensors.read(file);
    Path g = dir.resolve("g.safetensors");
    TensorFiles.write(g, Map.of("dy", t.get("dy")));
    Path grads = dir.resolve("grads.safetensors");
    List<String> a = args(file, flags.trim().split(" +"));
    a.addAll(List.of("--grad-output", g.toString(), "--grads-output", grads.toString()));
    Result r = run(a);
    assertEquals(0, r.code(), r.err());
    check(name + " y", TensorFiles.read(dir.resolve("y.safetensors"), "y"), t.get("y"));
    Map<String, Tensor> got = TensorFiles.readAll(grads);
    check(name + " dx", got.get("dx"), t.get("dx"));
    for (String proj : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
      check(name + " " + proj + ".weight", got.get(proj + ".weight"),
          t.get("grad." + proj + ".weight"));
      if (t.containsKey("grad." + proj + ".bias")) {
        GqaLayerTest.checkBias(name, proj, got, t); // k_proj.bias's is 0 up to rounding
      }
    }
  }

  @Test
  void badKeyValueHeadsAndShapesAreOneLineErrors() {
    Path file = fixture("h6_g2_bias");
    Result r = run(args(file, "--num-heads", "6", "--num-kv-heads", "4", "--axis", "1"));
    assertEquals(2, r.code(), r.err());
    assertOneLine(r, "--num-kv-heads 4 must divide --num-heads 6");
    r = run(args(file, "--num-heads", "6", "--num-kv-heads", "3", "--axis", "1"));
    assertOneLine(r, "weight 'k_proj.weight' has shape [8, 24], expected [12, 24] for embed 24,"
        + " 6 heads and 3 K/V heads");
    r = run(args(file, "--num-heads", "6", "--num-kv-heads", "2", "--axis", "1", "--backend",
        "mesh2d", "--sp", "2"));
    assertOneLine(r, "--backend mesh2d does not run grouped-query attention");
    r = run(args(file, "--num-heads", "6", "--num-kv-heads", "2", "--axis", "1", "--backend",
        "ulysses", "--sp", "3"));
    assertOneLine(r, "ulysses over 3 ranks needs the K/V head count (2) to divide 3");

    Map<String, Tensor> t = new HashMap<>(Safetensors.read(file));
    t.remove("v_proj.weight");
    Path broken = dir.resolve("broken.safetensors");
    Safetensors.write(broken, t);
    r = run(args(broken, "--num-heads", "6", "--num-kv-heads", "2", "--axis", "1"));
    assertOneLine(r, "weight 'v_proj.weight' is missing; the weights hold [");
  }

  private static void assertOneLine(Result r, String start) {
    assertTrue(r.code() != 0, "exit code " + r.code());
    String line = r.err().strip();
    assertEquals(1, line.lines().count(), r.err());
    assertTrue(line.contains(start), "expected '" + start + "' in: " + line);
  }

  private static void check(String what, Tensor actual, Tensor expected) {
    double err = RelativeError.of(actual, expected);
    assertTrue(err < TOL, what + ": relative error " + err);
  }
}
