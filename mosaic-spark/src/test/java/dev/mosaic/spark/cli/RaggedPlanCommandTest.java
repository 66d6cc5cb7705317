package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code mosaic plan --lengths}: a comma list or a file of lengths, and its one-line errors. */
@Timeout(60)
class RaggedPlanCommandTest {
  @TempDir
  Path dir;

  private static String[] run(int expectedCode, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Mosaic.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    String o = out.toString(StandardCharsets.UTF_8);
    String e = err.toString(StandardCharsets.UTF_8);
    assertEquals(expectedCode, code, o + e);
    return new String[] {o, e.strip()};
  }

  @Test
  void commaListPrintsWhereEachSequenceRuns() {
    String out = run(0, "plan", "--lengths", "100,5000,40000,120000", "--heads", "8",
        "--head-dim", "64", "--gpus", "4", "--gpu-memory", "128m")[0];
    assertTrue(out.startsWith("Ragged plan: 4 sequences, 165100 tokens (lengths n 100..120000),"
        + " 8 heads x 64, task memory 128.0 MiB, up to 4 shards"), out);
    assertTrue(out.contains("packed: 2 sequences in 2 ordinary tasks"), out);
    assertTrue(out.contains("sharded: 2 sequences in 1 barrier stage(s)"), out);
  }

  @Test
  void keyValueHeadsShrinkMemorySoMoreSequencesRunWhole() {
    // 8 heads x 64 at 20,000 tokens: one task holds q, out (2·20000·512 floats) and k, v of 8
    // heads (2·20000·512), ~156 MiB > 128 MiB, but with 2 K/V heads only 2·20000·128: ~98 MiB.
    String[] mha = {"plan", "--lengths", "100,20000", "--heads", "8", "--head-dim", "64",
        "--gpus", "4", "--gpu-memory", "128m"};
    assertTrue(run(0, mha)[0].contains("sharded: 1 sequence in 1 barrier stage(s)"));
    String out = run(0, concat(mha, "--num-kv-heads", "2"))[0];
    assertTrue(out.contains("8 heads (2 K/V) x 64"), out);
    assertTrue(out.contains("packed: 2 sequences in 2 ordinary tasks"), out);
    assertTrue(out.contains("sharded: none"), out);
    String single = run(0, "plan", "--seq", "65536", "--heads", "8", "--num-kv-heads", "2",
        "--head-dim", "64", "--gpus", "4")[0];
    assertTrue(single.contains("8 heads (2 K/V) x 64"), single);
    assertTrue(single.contains("| ring |") && !single.contains("mesh2d"), single);
    assertEquals("mosaic plan: error: --num-kv-heads 3 must divide --heads 8 (each K/V head"
        + " serves H/G query heads)", run(2, concat(mha, "--num-kv-heads", "3"))[1]);
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void fileOfLengthsWithCommentsAndBlankLines() throws Exception {
    Path file = dir.resolve("lengths.txt");
    Files.writeString(file, "# one length per line\n16\n\n32, 64 # two more\n4096\n");
    String out = run(0, "plan", "--lengths", file.toString(), "--heads", "2", "--head-dim", "8",
        "--gpus", "2", "--slots", "3", "--causal")[0];
    assertTrue(out.contains("4 sequences, 4208 tokens"), out);
    assertTrue(out.contains("packed: 4 sequences in 3 ordinary tasks"), out);
  }

  @Test
  void badLengthsAreOneLineUsageErrors() {
    assertEquals("mosaic plan: error: --lengths: '12x' is not a length (a whole number)",
        run(2, "plan", "--lengths", "5,12x", "--heads", "2", "--head-dim", "8")[1]);
    assertEquals("mosaic plan: error: --lengths: length 0 must be at least 1",
        run(2, "plan", "--lengths", "5,0", "--heads", "2", "--head-dim", "8")[1]);
    assertEquals("mosaic plan: error: --lengths expects N,N,... or a file of lengths, got"
        + " 'nope.txt' (no such file)",
        run(2, "plan", "--lengths", "nope.txt", "--heads", "2", "--head-dim", "8")[1]);
  }
}
