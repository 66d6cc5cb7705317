package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.spark.cli.GqaSelftest;
import dev.mosaic.spark.cli.SelftestCommand;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.function.IntUnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class SelftestCommandTest {
  private static final double TOLERANCE = SelftestCommand.TOLERANCE;

  private static int run(StringBuilder text, String... args) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int code;
    try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      code = SelftestCommand.run(args, out);
    }
    text.append(bytes.toString(StandardCharsets.UTF_8));
    return code;
  }

  private static String judged(GqaSelftest.Case c, GqaSelftest.Result got, boolean[] ok) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      ok[0] = GqaSelftest.judge(out, "cpu", c, got, TOLERANCE);
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void withoutAGpuItChecksTheCpuSaysWhyAndExitsZero() {
    Assumptions.assumeFalse(Gpu.available(), "this machine has a GPU");
    StringBuilder out = new StringBuilder();
    assertEquals(0, run(out, "--seed", "7"), out.toString());
    String text = out.toString();
    assertTrue(text.startsWith("selftest: seed 7\n"), text);
    assertTrue(text.contains("\nselftest: no usable GPU: " + Gpu.unavailableReason() + "\n"),
        text);
    assertTrue(text.contains("\nselftest: CPU comparisons within " + TOLERANCE + "\n"), text);
    StringBuilder strict = new StringBuilder();
    assertEquals(SelftestCommand.EXIT_NO_GPU, run(strict, "--require-gpu"), strict.toString());
  }

  /**
   * On every machine: one GQA line per mask for the CPU kernel (and, on a GPU, per dtype), each
   * naming heads, K/V heads, n and d, with its errors within the tolerance.
   */
  @Test
  void everyBackendPrintsAPassingGroupedQueryLine() {
    StringBuilder out = new StringBuilder();
    run(out, "--seed", "11");
    String text = out.toString();
    String[] backends = Gpu.available() ? new String[] {"cpu", "fp32", "fp16", "bf16"}
        : new String[] {"cpu"};
    for (String backend : backends) {
      for (String mask : new String[] {"no mask", "causal"}) {
        Matcher m = Pattern.compile("selftest: gqa " + Pattern.quote(backend)
            + " +heads=8 kv heads=2 b=2 n=77 d=64 " + mask
            + ", max abs err (\\S+), +rel err (\\S+) ok").matcher(text);
        assertTrue(m.find(), backend + " " + mask + " line missing or not ok:\n" + text);
        double maxAbs = Double.parseDouble(m.group(1));
        double rel = Double.parseDouble(m.group(2));
        // Measured, not zero: fp32 sums differ from double ones somewhere in 78,848 outputs.
        assertTrue(maxAbs > 0 && rel > 0, m.group());
        if (backend.equals("cpu")) {
          assertTrue(rel < TOLERANCE, m.group());
        }
        assertFalse(m.find(), "two " + backend + " " + mask + " lines:\n" + text);
      }
    }
  }

  /**
   * The check fails a kernel that gets GQA wrong: the real CPU kernel run on K/V expanded with a
   * wrong head mapping (interleaved instead of grouped, or every query head on K/V head 0) gives
   * a FAILED line, while the right mapping on the same case passes.
   */
  @Test
  void aWrongKvHeadMappingFailsTheGroupedQueryCheck() {
    int group = GqaSelftest.HEADS / GqaSelftest.KV_HEADS;
    IntUnaryOperator right = h -> h / group;
    IntUnaryOperator interleaved = h -> h % GqaSelftest.KV_HEADS;
    IntUnaryOperator allOnZero = h -> 0;
    Random rnd = new Random(3);
    try (CpuFlashAttention cpu = new CpuFlashAttention()) {
      for (var mask : GqaSelftest.MASKS) {
        GqaSelftest.Case c = GqaSelftest.Case.random(rnd, GpuDtype.FP32, mask);
        boolean[] ok = new boolean[1];
        String line = judged(c, asMha(c, right).run(cpu), ok);
        assertTrue(ok[0] && line.endsWith(" ok\n"), line);
        for (IntUnaryOperator wrong : new IntUnaryOperator[] {interleaved, allOnZero}) {
          line = judged(c, asMha(c, wrong).run(cpu), ok);
          assertFalse(ok[0], line);
          assertTrue(line.startsWith("selftest: gqa cpu ") && line.endsWith(" FAILED\n"), line);
        }
      }
    }
  }

  /** The case with K/V repeated to one head per query head, query head h reading kvHead(h). */
  private static GqaSelftest.Case asMha(GqaSelftest.Case c, IntUnaryOperator kvHead) {
    return new GqaSelftest.Case(c.storage(), c.q(), repeat(c.k(), kvHead), repeat(c.v(), kvHead),
        c.scale(), c.mask(), c.want(), c.wantLse());
  }

  private static Tensor repeat(Tensor kv, IntUnaryOperator kvHead) {
    int b = kv.dim(0);
    int n = kv.dim(1);
    int g = kv.dim(2);
    int d = kv.dim(3);
    int h = GqaSelftest.HEADS;
    float[] out = new float[b * n * h * d];
    for (int row = 0; row < b * n; row++) {
      for (int head = 0; head < h; head++) {
        System.arraycopy(kv.data(), (row * g + kvHead.applyAsInt(head)) * d, out,
            (row * h + head) * d, d);
      }
    }
    return Tensor.of(out, b, n, h, d);
  }

  @Test
  void onAGpuEveryComparisonPasses() {
    Assumptions.assumeTrue(Gpu.available(), () -> "no usable GPU: " + Gpu.unavailableReason());
    StringBuilder out = new StringBuilder();
    int code = run(out, "--seed", "7");
    assertEquals(0, code, out.toString());
    assertTrue(out.toString().contains("selftest: all comparisons within"), out.toString());
  }
}
