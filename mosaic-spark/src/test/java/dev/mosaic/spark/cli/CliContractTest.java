package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.NaiveMultiAxisAttention;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.SparkSessions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a new user meets on the command line, through {@link Mosaic#run}: help for every command,
 * one-line errors with exit code 2 (usage) or 1 (a failed run), {@code --verbose},
 * {@code --flag=value}, the default master, {@code --mesh} as the task count, and the driver-side
 * checks on the input (tasks versus positions, empty axes, non-finite values).
 */
class CliContractTest {
  private static final List<String> COMMANDS =
      List.of("attention", "attention-table", "predict", "bench", "demo", "plan", "doctor",
          "selftest");

  @TempDir
  Path dir;
  private final Random rnd = new Random(20260107);

  /** Exit code {@code code} and exactly the line {@code expected} on stderr. */
  private static void assertOneLine(int code, String expected, String... args) {
    Result r = run(args);
    assertEquals(code, r.code(), r.err());
    assertEquals(List.of(expected), r.errLines());
  }

  @Test
  void everyCommandAnswersHelpOnStdout() {
    for (String cmd : COMMANDS) {
      for (String[] args : List.of(new String[] {cmd, "--help"}, new String[] {cmd, "-h"},
          new String[] {"help", cmd})) {
        Result r = run(args);
        assertEquals(0, r.code(), Arrays.toString(args) + ": " + r.err());
        assertTrue(r.out().startsWith("usage: mosaic " + cmd), Arrays.toString(args) + ": "
            + r.out());
        assertEquals("", r.err(), Arrays.toString(args));
      }
    }
    Result r = run("bench", "ring", "--sp", "2", "--help");
    assertEquals(0, r.code());
    assertTrue(r.out().contains("usage: mosaic bench ring"), r.out());
    r = run("help");
    assertEquals(0, r.code());
    for (String cmd : COMMANDS) {
      assertTrue(r.out().contains("usage: mosaic " + cmd), cmd);
    }
    assertOneLine(2, "mosaic: error: unknown command 'nope'; see 'mosaic help'", "help", "nope");
  }

  @Test
  void unknownFlagsAndCommandsNameTheClosestOne() {
    assertOneLine(2, "mosaic attention: error: unknown flag --bogus-master for 'attention'; did"
        + " you mean --master?", "attention", "--input", "x", "--bogus-master", "local[2]");
    assertOneLine(2, "mosaic plan: error: unknown flag --sq for 'plan'; did you mean --seq?",
        "plan", "--sq", "100");
    assertOneLine(2, "mosaic demo: error: unknown flag --no-chek for 'demo'; did you mean"
        + " --no-check?", "demo", "--no-chek");
    assertOneLine(2, "mosaic attention: error: unknown flag --zzzzzzzz for 'attention'; see"
        + " 'mosaic help attention'", "attention", "--zzzzzzzz");
    assertOneLine(2, "mosaic bench: error: unknown flag --tokns for 'bench ring'; did you"
        + " mean --tokens?", "bench", "ring", "--tokns", "8");
    assertOneLine(2, "mosaic: error: unknown command 'atention'; did you mean 'attention'?; see"
        + " 'mosaic help'", "atention", "--input", "x");
  }

  @Test
  void switchesTakeTrueOrFalseAfterAnEqualsSign() {
    Tensor x = Tensor.randn(rnd, 1f, 2, 9, 8);
    AttentionWeights w = AttentionWeights.random(8, rnd.nextLong());
    Path in = write("x.safetensors", Map.of("x", x));
    Path wf = write("w.safetensors", w.toMap(""));
    Tensor causal = NaiveMultiAxisAttention.forward(x, w, 2, 1, true, Long.MAX_VALUE);
    Tensor full = NaiveMultiAxisAttention.forward(x, w, 2, 1, false, Long.MAX_VALUE);
    for (String[] flag : List.of(new String[] {"--causal=true"}, new String[] {"--causal=TRUE"},
        new String[] {"--causal=false", "--causal"}, new String[] {"--causal=false"},
        new String[] {"--causal", "--causal=false"})) {
      boolean on = flag[flag.length - 1].equals("--causal") || flag[0].endsWith("=true")
          || flag[0].endsWith("=TRUE");
      Path out = dir.resolve("y" + String.join("", flag).replace("=", "") + ".safetensors");
      List<String> args = new ArrayList<>(List.of("attention", "--input=" + in, "--weights=" + wf,
          "--output=" + out, "--num-heads=2", "--axis=1", "--threads=1"));
      args.addAll(List.of(flag));
      Result r = run(args.toArray(new String[0]));
      assertEquals(0, r.code(), r.err());
      double err = RelativeError.of(Safetensors.read(out, "y"), on ? causal : full);
      assertTrue(err < 1e-5, Arrays.toString(flag) + ": relative error " + err);
    }
    assertOneLine(2, "mosaic attention: error: --causal is a switch: give it alone, or as"
        + " --causal=true or --causal=false, got 'yes?'", "attention", "--input", in.toString(),
        "--causal=yes?");
  }

  @Test
  void verboseAnywhereAddsTheStackTrace() {
    Result quiet = run("attention", "--heads", "2");
    assertEquals(1, quiet.errLines().size(), quiet.err());
    for (String[] args : List.of(new String[] {"--verbose", "attention", "--heads", "2"},
        new String[] {"attention", "--heads", "2", "--verbose"},
        new String[] {"attention", "--verbose=true", "--heads", "2"})) {
      Result r = run(args);
      assertEquals(2, r.code(), Arrays.toString(args));
      assertEquals(quiet.errLines().get(0), r.errLines().get(0), Arrays.toString(args));
      assertTrue(r.err().contains("UserError") && r.err().contains("\tat dev.mosaic.spark.cli."),
          Arrays.toString(args) + ": " + r.err());
    }
    assertEquals(quiet.err(), run("attention", "--verbose=false", "--heads", "2").err());
  }

  @Test
  void moreTasksThanPositionsFailsBeforeSparkStarts() {
    Path in = write("x3.safetensors", Map.of("x", Tensor.randn(rnd, 1f, 1, 3, 8)));
    Path wf = write("w.safetensors", AttentionWeights.random(8, 1).toMap(""));
    String[] base = {"attention", "--input", in.toString(), "--weights", wf.toString(),
        "--output", dir.resolve("y.safetensors").toString(), "--num-heads", "2", "--axis", "1"};
    assertOneLine(2, "mosaic attention: error: --sp 4 needs at least 4 positions along axis 1,"
        + " which has 3", concat(base, "--backend", "ring", "--sp", "4"));
    assertOneLine(2, "mosaic attention: error: --mesh 2x2 needs at least 4 positions along axis"
        + " 1, which has 3", concat(base, "--backend", "mesh2d", "--mesh", "2x2"));
    Path in2 = write("x2d.safetensors", Map.of("x", Tensor.randn(rnd, 1f, 1, 2, 8)));
    base[2] = in2.toString();
    assertOneLine(2, "mosaic attention: error: --sp 3 needs at least 3 positions along axes 0"
        + " and 1 (flattened), which has 2", concat(base, "--axis", "0", "--axis2", "1",
        "--backend", "ring", "--sp", "3"));
    assertOneLine(2, "mosaic demo: error: --sp 4 needs at least 4 positions along the table's"
        + " rows (--rows), which has 3", "demo", "--rows", "3", "--sp", "4");
  }

  @Test
  void emptyAxesAreUsageErrors() {
    Path wf = write("w.safetensors", AttentionWeights.random(8, 1).toMap(""));
    Path emptySeq = write("x0.safetensors", Map.of("x", Tensor.zeros(2, 0, 8)));
    assertOneLine(2, "mosaic attention: error: tensor 'x' has shape [2, 0, 8]: attention axis 1"
        + " is empty: nothing to attend over", "attention", "--input", emptySeq.toString(),
        "--weights", wf.toString(), "--output", "y", "--num-heads", "2", "--axis", "1");
    Path emptyEmbed = write("xe.safetensors", Map.of("x", Tensor.zeros(2, 5, 0)));
    assertOneLine(2, "mosaic attention: error: tensor 'x' has shape [2, 5, 0]: the embedding"
        + " (last axis) is empty", "attention", "--input", emptyEmbed.toString(), "--weights",
        wf.toString(), "--output", "y", "--num-heads", "2", "--axis", "1", "--backend", "ring");
  }

  @Test
  void nonFiniteValuesAreNamedUnlessAllowed() {
    Tensor x = Tensor.randn(rnd, 1f, 1, 6, 8);
    x.set(Float.NaN, 0, 2, 5);
    x.set(Float.POSITIVE_INFINITY, 0, 4, 0);
    x.set(Float.NaN, 0, 5, 7);
    Path in = write("xnan.safetensors", Map.of("x", x));
    AttentionWeights w = AttentionWeights.random(8, 2);
    Path wf = write("w.safetensors", w.toMap("attn."));
    Path y = dir.resolve("y.safetensors");
    String[] base = {"attention", "--input", in.toString(), "--weights", wf.toString(),
        "--weights-prefix", "attn.", "--output", y.toString(), "--num-heads", "2", "--axis", "1"};
    assertOneLine(2, "mosaic attention: error: tensor 'x' has 3 non-finite values (first NaN at"
        + " [0, 2, 5]); --allow-nonfinite lets them through", base);
    assertOneLine(2, "mosaic attention: error: tensor 'x' has 3 non-finite values (first NaN at"
        + " [0, 2, 5]); --allow-nonfinite lets them through",
        concat(base, "--backend", "ring", "--sp", "2"));
    Result r = run(concat(base, "--allow-nonfinite"));
    assertEquals(0, r.code(), r.err());
    assertTrue(Float.isNaN(Safetensors.read(y, "y").get(0, 0, 0)), "NaN spreads when allowed");

    Path clean = write("x.safetensors", Map.of("x", Tensor.randn(rnd, 1f, 1, 6, 8)));
    Map<String, Tensor> bad = new java.util.HashMap<>(w.toMap("attn."));
    Tensor bias = bad.get("attn.out_proj.bias").copy();
    bias.set(Float.NEGATIVE_INFINITY, 3);
    bad.put("attn.out_proj.bias", bias);
    Path badWeights = write("wbad.safetensors", bad);
    base[2] = clean.toString();
    base[4] = badWeights.toString();
    assertOneLine(2, "mosaic attention: error: tensor 'attn.out_proj.bias' has 1 non-finite value"
        + " (first -Inf at [3]); --allow-nonfinite lets them through", base);
  }

  @Test
  void meshFlagSetsTheTaskCount() {
    Path in = write("x.safetensors", Map.of("x", Tensor.randn(rnd, 1f, 1, 4, 8)));
    Path wf = write("w.safetensors", AttentionWeights.random(8, 1).toMap(""));
    String[] base = {"attention", "--input", in.toString(), "--weights", wf.toString(),
        "--output", "y", "--num-heads", "2", "--axis", "1"};
    assertOneLine(2, "mosaic attention: error: --sp 3 disagrees with --mesh 2x2, which needs 4"
        + " tasks; give one of them", concat(base, "--backend", "composed", "--mesh", "2x2",
        "--sp", "3"));
    assertOneLine(2, "mosaic attention: error: --mesh shapes --backend mesh2d or composed, not"
        + " ring; use --sp P for ring", concat(base, "--backend", "ring", "--mesh", "2x2"));
    assertOneLine(2, "mosaic attention: error: --mesh expects ROWSxCOLS of positive integers such"
        + " as 2x2, got '0x4'", concat(base, "--backend", "mesh2d", "--mesh", "0x4"));
  }

  /**
   * mesh2d 2x2 without --sp or --master: four barrier tasks on the default master, which gives
   * each a slot even on a 2-core machine; one position per task along the axis is enough.
   */
  @Test
  @Timeout(value = 5, unit = TimeUnit.MINUTES)
  void meshWithoutSpRunsOnTheDefaultMaster() {
    assertSharded(4, false, "--backend", "mesh2d", "--mesh", "2x2");
  }

  @Test
  @Timeout(value = 5, unit = TimeUnit.MINUTES)
  void moreTasksThanCoresRunOnTheDefaultMaster() {
    int cores = Runtime.getRuntime().availableProcessors();
    assertEquals("local[" + (cores + 3) + "]", SparkSessions.defaultMaster(cores + 3));
    assertEquals("local[" + cores + "]", SparkSessions.defaultMaster(1));
    assertSharded(4, true, "--backend", "ring", "--sp", "4");
  }

  @Test
  @Timeout(value = 5, unit = TimeUnit.MINUTES)
  void runtimeFailuresAreOneLineWithExitCodeOne() {
    Path in = write("x.safetensors", Map.of("x", Tensor.randn(rnd, 1f, 1, 16, 8)));
    Path wf = write("w.safetensors", AttentionWeights.random(8, 1).toMap(""));
    String[] base = {"attention", "--input", in.toString(), "--weights", wf.toString(),
        "--output", dir.resolve("y.safetensors").toString(), "--num-heads", "2", "--axis", "1",
        "--backend", "ring", "--sp", "2"};
    // An explicit --master is kept: too few slots is the cluster's state, not a usage error.
    Result slots = run(concat(base, "--master", "local[1]"));
    assertEquals(1, slots.code(), slots.err());
    assertEquals(1, slots.errLines().size(), slots.err());
    assertTrue(slots.err().startsWith("mosaic attention: error: Mosaic needs 2 barrier tasks"
        + " running at once, but master local[1] offers 1 task slot(s)"), slots.err());

    // A task that fails inside the barrier stage: frames above the limit are rejected (which
    // rank's error Spark reports first varies: the receiver's, or its peer's lost connection).
    // SparkConf reads spark.* system properties when the session starts.
    System.setProperty(MosaicConfig.COMM_MAX_FRAME, "64");
    System.setProperty(MosaicConfig.JOB_ATTEMPTS, "1");
    Result r;
    try {
      r = run(base);
    } finally {
      System.clearProperty(MosaicConfig.COMM_MAX_FRAME);
      System.clearProperty(MosaicConfig.JOB_ATTEMPTS);
    }
    assertEquals(1, r.code(), r.err());
    assertEquals(1, r.errLines().size(), r.err());
    String line = r.errLines().get(0);
    assertTrue(line.startsWith("mosaic attention: error: Spark job failed: "), line);
    assertFalse(line.contains("Job aborted") || line.contains("\tat "), line);
  }

  /** Sharded attention of x (1, n, 8) without --master against the reference. */
  private void assertSharded(int n, boolean causal, String... flags) {
    Tensor x = Tensor.randn(rnd, 1f, 1, n, 8);
    AttentionWeights w = AttentionWeights.random(8, rnd.nextLong());
    Path in = write("xs.safetensors", Map.of("x", x));
    Path wf = write("ws.safetensors", w.toMap(""));
    Path out = dir.resolve("ys.safetensors");
    String[] args = concat(new String[] {"attention", "--input", in.toString(), "--weights",
        wf.toString(), "--output", out.toString(), "--num-heads", "2", "--axis", "1"}, flags);
    Result r = run(causal ? concat(args, "--causal") : args);
    assertEquals(0, r.code(), r.err());
    Tensor y = Safetensors.read(out, "y");
    assertArrayEquals(x.shape(), y.shape());
    double err = RelativeError.of(y, NaiveMultiAxisAttention.forward(x, w, 2, 1, causal,
        Long.MAX_VALUE));
    assertTrue(err < 1e-5, "relative error " + err);
  }

  private Path write(String name, Map<String, Tensor> tensors) {
    Path p = dir.resolve(name);
    Safetensors.write(p, tensors);
    return p;
  }

  private static String[] concat(String[] a, String... b) {
    String[] all = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }
}
