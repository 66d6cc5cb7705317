package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static dev.mosaic.spark.cli.PredictCli.assertClose;
import static dev.mosaic.spark.cli.PredictCli.assertUsageError;
import static dev.mosaic.spark.cli.PredictCli.data;
import static dev.mosaic.spark.cli.PredictCli.model;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.strategy.Backends;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code mosaic predict}, tensor form: DATA in, OUT out, equal to PyTorch on the committed
 * fixtures; every bad input and checkpoint is one line with exit code 2.
 */
class PredictCommandTest {
  @TempDir
  Path dir;

  private String[] tensorArgs(Path modelFile, Path dataFile, String... more) {
    List<String> a = new java.util.ArrayList<>(List.of("predict", "--model", modelFile.toString(),
        "--data", dataFile.toString(), "--output", dir.resolve("out.safetensors").toString(),
        "--threads", "2"));
    a.addAll(List.of(more));
    return a.toArray(new String[0]);
  }

  private Path write(String name, Map<String, Tensor> tensors) {
    Path p = dir.resolve(name);
    Safetensors.write(p, tensors);
    return p;
  }

  @ParameterizedTest
  @ValueSource(strings = {"small", "deep", "wide"})
  void tensorFormEqualsPyTorch(String name) {
    Map<String, Tensor> expected = data(name);
    // The fixture's data file also holds PyTorch's outputs: predict reads only x and y.
    Path dataFile = PredictCli.fixture(name + ".data.safetensors");
    Path out = dir.resolve("out.safetensors");
    CliRun.Result r = run(tensorArgs(model(name), dataFile, "--backend", "local"));
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("wrote logits"), r.out());
    Map<String, Tensor> written = Safetensors.read(out);
    assertEquals(List.of("logits", "probabilities"), List.copyOf(new java.util.TreeSet<>(
        written.keySet())));
    for (String t : List.of("logits", "probabilities")) {
      assertArrayEquals(expected.get(t).shape(), written.get(t).shape(), t);
      assertClose(expected.get(t), written.get(t).data(), name + " " + t);
    }
  }

  @Test
  void autoIsTheDefaultAndRunsSmallTablesLocally() throws IOException {
    Path out = dir.resolve("out.safetensors");
    CliRun.Result r = run("predict", "--model", model("small").toString(), "--data",
        PredictCli.fixture("small.data.safetensors").toString(), "--output", out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains(", local, "), r.out());
    assertClose(data("small").get("logits"), Safetensors.read(out, "logits").data(), "logits");
    try (var files = Files.list(dir)) {
      assertEquals(List.of(out), files.toList(), "only OUT is left, no temporary file");
    }
  }

  @Test
  void autoRuleIsAQuarterOfTheHeap() {
    assertEquals(Backends.LOCAL, PredictCommand.autoBackend(250, 1000));
    assertEquals(Backends.RING, PredictCommand.autoBackend(251, 1000));
    NanoTabPfnShape shape = new NanoTabPfnShape(16, 2, 1, 32, 3);
    // 4 bytes x rows x (features + 1) x (8E + mlpHidden)
    assertEquals(4L * 1000 * 6 * (8 * 16 + 32), PredictCommand.workingSetBytes(shape, 1000, 5));
  }

  @Test
  void regressionTargetsGetLogitsOnly() {
    Map<String, Tensor> fixture = data("small");
    float[] y = fixture.get("y").data().clone();
    for (int i = 0; i < y.length; i++) {
      y[i] = y[i] * 0.37f - 0.5f;
    }
    Path dataFile = write("reg.safetensors", Map.of("x", fixture.get("x"),
        "y", Tensor.of(y, y.length)));
    CliRun.Result r = run(tensorArgs(model("small"), dataFile, "--backend", "local"));
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("regression targets"), r.out());
    Map<String, Tensor> written = Safetensors.read(dir.resolve("out.safetensors"));
    assertFalse(written.containsKey("probabilities"));
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(model("small"), null, 1)) {
      assertArrayEquals(m.logits(fixture.get("x"), y).data(), written.get("logits").data(),
          1e-6f);
    }
  }

  @Test
  void badDataIsOneLine() {
    Map<String, Tensor> fixture = data("small");
    Tensor x = fixture.get("x");
    Tensor y = fixture.get("y");
    int rows = x.dim(0);
    Path m = model("small");
    assertUsageError(tensorArgs(m, write("nox.safetensors", Map.of("y", y))),
        "has no tensor 'x': expected [rows, features]");
    assertUsageError(tensorArgs(m, write("noy.safetensors", Map.of("x", x))),
        "has no tensor 'y': expected [nTrain]");
    assertUsageError(tensorArgs(m, write("y2d.safetensors", Map.of("x", x,
        "y", y.reshape(1, y.dim(0))))), "tensor 'y'", "must be [nTrain], got [1, 15]");
    assertUsageError(tensorArgs(m, write("emptytrain.safetensors", Map.of("x", x,
        "y", Tensor.zeros(0)))), "tensor 'y'", "is empty", "empty train set");
    assertUsageError(tensorArgs(m, write("emptytest.safetensors", Map.of("x", x,
        "y", Tensor.zeros(rows)))), "has " + rows + " labels and 'x' " + rows + " rows",
        "there are none");
    Tensor nan = x.copy();
    nan.set(Float.NaN, 17, 2);
    assertUsageError(tensorArgs(m, write("nan.safetensors", Map.of("x", nan, "y", y))),
        "tensor 'x' has 1 non-finite value (first NaN at [17, 2])");
    float[] big = y.data().clone();
    big[0] = 7;
    assertUsageError(tensorArgs(m, write("bigclass.safetensors", Map.of("x", x,
        "y", Tensor.of(big, big.length)))), "largest class id is 7", "3 outputs");
  }

  @Test
  void badCheckpointsAreOneLine() {
    Path d = PredictCli.fixture("small.data.safetensors");
    Map<String, Tensor> good = Safetensors.read(model("small"));
    String inProj = "transformer_blocks.0.self_attention_between_datapoints.in_proj_weight";

    Map<String, Tensor> missing = new LinkedHashMap<>(good);
    missing.remove("decoder.linear2.bias");
    assertUsageError(tensorArgs(checkpoint("missing", missing), d),
        "is missing tensor 'decoder.linear2.bias': expected shape [3], found none");

    Map<String, Tensor> extra = new LinkedHashMap<>(good);
    extra.put("decoder.linear3.weight", Tensor.zeros(2, 2));
    assertUsageError(tensorArgs(checkpoint("extra", extra), d),
        "unexpected tensor 'decoder.linear3.weight' of shape [2, 2]");

    Map<String, Tensor> shaped = new LinkedHashMap<>(good);
    shaped.put(inProj, Tensor.zeros(47, 16));
    assertUsageError(tensorArgs(checkpoint("shape", shaped), d),
        "tensor '" + inProj + "' has the wrong shape: expected [48, 16], found [47, 16]");

    Path noHeads = write("noheads.safetensors", good); // no __metadata__
    assertUsageError(tensorArgs(noHeads, d), "has no __metadata__ num_attention_heads",
        "--num-heads");
    CliRun.Result r = run(tensorArgs(noHeads, d, "--num-heads", "2", "--backend", "local"));
    assertEquals(0, r.code(), r.err());
    assertClose(data("small").get("logits"),
        Safetensors.read(dir.resolve("out.safetensors"), "logits").data(), "--num-heads 2");
    assertUsageError(tensorArgs(model("small"), d, "--num-heads", "3"),
        "numHeads 3 does not divide the embedding width 16");

    Path garbage = dir.resolve("garbage.safetensors");
    try {
      Files.writeString(garbage, "not a safetensors file");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    assertUsageError(tensorArgs(garbage, d), "garbage.safetensors");
    assertUsageError(tensorArgs(dir.resolve("none.safetensors"), d),
        "--model " + dir.resolve("none.safetensors") + ": no such file");
  }

  private Path checkpoint(String name, Map<String, Tensor> tensors) {
    Path p = dir.resolve(name + ".model.safetensors");
    Safetensors.write(p, tensors, Map.of(NanoTabPfnCheckpoint.HEADS_KEY, "2"));
    return p;
  }

  @Test
  void badFlagsAreOneLine() {
    Path m = model("small");
    Path d = PredictCli.fixture("small.data.safetensors");
    assertUsageError(new String[] {"predict", "--model", m.toString(), "--output", "o"},
        "'predict' needs --data, or --train, --test and --label");
    assertUsageError(tensorArgs(m, d, "--train", "t.csv"), "give either --data (tensor form)");
    assertUsageError(tensorArgs(m, d, "--backend", "mesh2d"),
        "unknown backend 'mesh2d' for predict; expected one of local, ring, auto");
    assertUsageError(tensorArgs(m, d, "--backend", "local", "--sp", "2"),
        "--sp needs --backend ring or auto");
    assertUsageError(tensorArgs(m, d, "--heads", "2"),
        "unknown flag --heads for 'predict'; did you mean --num-heads?");
    assertUsageError(tensorArgs(m, d, "--backend", "ring", "--sp", "40"),
        "--sp 40 needs at least 40 positions along the rows, which has 23");
  }
}
