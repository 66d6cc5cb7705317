package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.NaiveMultiAxisAttention;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI contract, through real files: what other tools will call. */
class AttentionCommandTest {
  @TempDir
  Path dir;
  private final Random rnd = dev.mosaic.test.TestSeed.random();

  private AttentionWeights weights(int e) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e), Tensor.randn(rnd, 0.1f, 3 * e),
        Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
  }

  @Test
  void attentionReadsXWritesYMatchingTheReference() {
    Tensor x = Tensor.randn(rnd, 1f, 3, 37, 5, 24);
    AttentionWeights w = weights(24);
    Path in = dir.resolve("x.safetensors");
    Path wf = dir.resolve("w.safetensors");
    Path outFile = dir.resolve("y.safetensors");
    Safetensors.write(in, Map.of("x", x));
    Safetensors.write(wf, w.toMap(""));
    Result r = run("attention", "--input", in.toString(), "--weights", wf.toString(), "--output",
        outFile.toString(), "--num-heads", "3", "--axis", "-3", "--causal", "--threads", "2");
    assertEquals(0, r.code(), r.err());
    Tensor y = Safetensors.read(outFile, "y");
    assertArrayEquals(x.shape(), y.shape());
    Tensor expected = NaiveMultiAxisAttention.forward(x, w, 3, -3, true, Long.MAX_VALUE);
    double err = RelativeError.of(y, expected);
    assertTrue(err < 1e-5, "relative error " + err);
  }

  @Test
  void badInputGivesOneLineAndNonZeroExit() {
    Path in = dir.resolve("x.safetensors");
    Path wf = dir.resolve("w.safetensors");
    Safetensors.write(in, Map.of("x", Tensor.randn(rnd, 1f, 4, 16)));
    Safetensors.write(wf, weights(16).toMap(""));
    String o = dir.resolve("y.safetensors").toString();
    assertError("mosaic attention: error: --num-heads expects an integer, got 'four'",
        "attention", "--input", in.toString(), "--weights", wf.toString(), "--output", o,
        "--num-heads", "four", "--axis", "0");
    assertError("mosaic attention: error: 'attention' needs --axis", "attention", "--input",
        in.toString(), "--weights", wf.toString(), "--output", o, "--num-heads", "4");
    assertError("mosaic attention: error: embedDim 16 is not divisible by numHeads 3 (each head"
            + " gets embedDim/numHeads features)", "attention", "--input", in.toString(),
        "--weights", wf.toString(), "--output", o, "--num-heads", "3", "--axis", "0");
    assertError("mosaic attention: error: unknown backend 'spiral'; expected one of local, ring, mesh2d, ulysses,"
            + " composed, hierarchical, auto",
        "attention", "--input", in.toString(), "--weights", wf.toString(), "--output", o,
        "--num-heads", "4", "--axis", "0", "--backend", "spiral");
    assertError("mosaic attention: error: --input " + dir.resolve("nope") + ": no such file",
        "attention", "--input", dir.resolve("nope").toString(), "--weights", wf.toString(),
        "--output", o, "--num-heads", "4", "--axis", "0");
    assertError("mosaic attention: error: attentionAxis 1 is out of range for an input of rank 2:"
            + " expected -2..0 excluding the embed axis (1 or -1)", "attention", "--input",
        in.toString(), "--weights", wf.toString(), "--output", o, "--num-heads", "4", "--axis",
        "1");
    Result r = run("attention", "--input", in.toString(), "--weights", in.toString(), "--output",
        o, "--num-heads", "4", "--axis", "0");
    assertEquals(2, r.code());
    assertTrue(r.err().startsWith("mosaic attention: error: weight 'in_proj_weight' is missing"),
        r.err());
    assertTrue(Files.notExists(Path.of(o)), "no output on failure");
  }

  @Test
  void unknownCommandsAndFlagsAreOneLine() {
    Result r = run("frobnicate");
    assertEquals(2, r.code());
    assertEquals("mosaic: error: unknown command 'frobnicate'; see 'mosaic help'", r.err().strip());
    r = run();
    assertEquals(2, r.code());
    assertTrue(r.err().contains("usage: mosaic [--verbose] <command>"));
    assertError("mosaic attention: error: unknown flag --heads for 'attention'; did you mean"
        + " --num-heads?", "attention", "--heads", "2");
    assertError("mosaic attention: error: --sp, --master, --mesh, --intra-node-size and --comm"
        + " need a distributed backend such as --backend ring", "attention", "--input", inputFile().toString(), "--weights",
        inputFile().toString(), "--output", "y", "--num-heads", "1", "--axis", "0", "--sp", "2");
    assertEquals(0, run("help").code());
  }

  @Test
  void badStrategyFlagsFailBeforeSparkStarts() {
    Path in = inputFile();
    Path wf = dir.resolve("w8.safetensors");
    Safetensors.write(wf, weights(8).toMap(""));
    assertError("mosaic attention: error: --mesh expects ROWSxCOLS of positive integers such as"
        + " 2x2, got 'two'",
        "attention", "--input", in.toString(), "--weights", wf.toString(), "--output", "y",
        "--num-heads", "2", "--axis", "0", "--backend", "mesh2d", "--mesh", "two");
    assertError("mosaic attention: error: --sp 2 disagrees with --mesh 3x1, which needs 3 tasks;"
        + " give one of them", "attention", "--input", in.toString(), "--weights",
        wf.toString(), "--output", "y", "--num-heads", "2", "--axis", "0", "--backend", "mesh2d",
        "--mesh", "3x1", "--sp", "2");
    assertError("mosaic attention: error: ulysses needs the head count (2) to be divisible by the"
        + " number of ranks (3); use 1 or 2 ranks, or another backend", "attention", "--input",
        in.toString(), "--weights", wf.toString(), "--output", "y", "--num-heads", "2", "--axis",
        "0", "--backend", "ulysses", "--sp", "3");
  }

  @Test
  void deviceFlag() {
    Path in = inputFile();
    Path wf = dir.resolve("w8d.safetensors");
    Safetensors.write(wf, weights(8).toMap(""));
    String o = dir.resolve("yd.safetensors").toString();
    assertError("mosaic attention: error: unknown device 'tpu'; expected one of cpu, gpu, auto",
        "attention", "--input", in.toString(), "--weights", wf.toString(), "--output", o,
        "--num-heads", "2", "--axis", "0", "--device", "tpu");
    assertEquals(0, run("attention", "--input", in.toString(), "--weights", wf.toString(),
        "--output", o, "--num-heads", "2", "--axis", "0", "--device", "cpu").code());
    assertError("mosaic attention: error: --gpu-dtype fp16 stores inputs on a GPU, but --device is"
        + " cpu (the CPU kernel computes in fp32)", "attention", "--input", in.toString(),
        "--weights", wf.toString(), "--output", o, "--num-heads", "2", "--axis", "0", "--device",
        "cpu", "--gpu-dtype", "fp16");
    assertError("mosaic attention: error: unknown GPU dtype 'fp8'; expected fp32, fp16 or bf16",
        "attention", "--input", in.toString(), "--weights", wf.toString(), "--output", o,
        "--num-heads", "2", "--axis", "0", "--gpu-dtype", "fp8");
    assertError("mosaic attention: error: --comm nccl connects GPUs, but --device is cpu: use"
        + " --comm tcp or --device gpu", "attention", "--input", in.toString(), "--weights",
        wf.toString(), "--output", o, "--num-heads", "2", "--axis", "0", "--backend", "ring",
        "--device", "cpu", "--comm", "nccl");
    assertError("mosaic attention: error: --comm expects auto, tcp or nccl, got 'mpi'",
        "attention", "--input", in.toString(), "--weights", wf.toString(), "--output", o,
        "--num-heads", "2", "--axis", "0", "--backend", "ring", "--comm", "mpi");
    org.junit.jupiter.api.Assumptions.assumeFalse(
        dev.mosaic.kernels.gpu.CudaFlashAttention.available(), "a GPU is usable here");
    Result r = run("attention", "--input", in.toString(), "--weights", wf.toString(), "--output",
        o + "2", "--num-heads", "2", "--axis", "0", "--device", "gpu");
    assertEquals(2, r.code());
    assertTrue(r.err().startsWith("mosaic attention: error: device gpu: no usable GPU here: "),
        r.err());
    assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
  }

  @Test
  void twoAxesLocallyMatchTheTwoAxisLayer() {
    Tensor x = Tensor.randn(rnd, 1f, 3, 4, 5, 16);
    AttentionWeights w = weights(16);
    Path in = dir.resolve("x4.safetensors");
    Path wf = dir.resolve("w16.safetensors");
    Path outFile = dir.resolve("y4.safetensors");
    Safetensors.write(in, Map.of("x", x));
    Safetensors.write(wf, w.toMap(""));
    Result r = run("attention", "--input", in.toString(), "--weights", wf.toString(), "--output",
        outFile.toString(), "--num-heads", "2", "--axis", "0", "--axis2", "2", "--threads", "1");
    assertEquals(0, r.code(), r.err());
    Tensor expected;
    try (dev.mosaic.spark.layers.MultiAxisAttention2D layer =
        new dev.mosaic.spark.layers.MultiAxisAttention2D(0, 2,
            dev.mosaic.spark.layers.MultiAxisAttention.builder(16, 2, 0).weights(w).threads(1))) {
      expected = layer.forward(x);
    }
    assertArrayEquals(expected.data(), Safetensors.read(outFile, "y").data());
  }

  private Path inputFile() {
    Path in = dir.resolve("x2.safetensors");
    if (Files.notExists(in)) {
      Safetensors.write(in, Map.of("x", Tensor.randn(rnd, 1f, 4, 8)));
    }
    return in;
  }

  private static void assertError(String expected, String... args) {
    Result r = run(args);
    assertEquals(2, r.code(), r.out());
    assertEquals(expected, r.err().strip());
  }
}
