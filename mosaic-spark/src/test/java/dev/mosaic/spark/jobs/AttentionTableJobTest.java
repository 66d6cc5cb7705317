package dev.mosaic.spark.jobs;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.spark.runner.TestSpark;
import dev.mosaic.test.TestSeed;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mosaic attention-table} end to end on real Spark ({@code local[4]}): a Parquet table of
 * sequences of uneven lengths, one of them too long for the (small, forced) task memory so it
 * goes through a barrier stage, comes back as Parquet equal to the local layer on each sequence
 * alone; bad input fails with one line and leaves the previous output in place.
 */
@Timeout(600) // a bound for a loaded machine, not an expectation: ~1 min on an idle one
class AttentionTableJobTest {
  private static final int E = 8;
  private static final int HEADS = 2;
  private static final int[] LENGTHS = {1, 3, 20, 57, 90, 160};

  @TempDir
  Path dir;
  private final Random rnd = TestSeed.random();

  @Test
  void raggedTableThroughPackedTasksAndABarrierStageEqualsTheLocalLayer() throws Exception {
    Map<String, Tensor> seqs = new LinkedHashMap<>();
    for (int n : LENGTHS) {
      seqs.put("doc-" + n, Tensor.randn(rnd, 1f, n, E));
    }
    AttentionWeights w = weights();
    Path weights = dir.resolve("w.safetensors");
    Safetensors.write(weights, w.toMap(""));
    String input = dir.resolve("in.parquet").toString();
    writeInput(seqs, input, -1);
    // Sequences of up to 100 positions fit a task; the one of 160 is sharded.
    long memory = RaggedPlanner.wholeMemory(100, new RaggedPlanner.Settings(HEADS, E / HEADS, 1,
        true, Long.MAX_VALUE, 1L << 30, 3, 4, "ring"));
    String output = dir.resolve("out.parquet").toString();
    Result r = run("attention-table", "--input", input, "--weights", weights.toString(),
        "--num-heads", Integer.toString(HEADS), "--causal", "--output", output, "--key-col", "doc",
        "--pos-col", "t", "--emb-col", "x", "--out-col", "y", "--sp", "3", "--task-memory",
        Long.toString(memory), "--master", "local[4]", "--threads", "1");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("packed: 5 sequences in 4 ordinary tasks"), r.out());
    assertTrue(r.out().contains("sharded: 1 sequence in 1 barrier stage(s)"), r.out());
    assertTrue(r.out().contains("wrote 331 rows (6 sequences) to " + output), r.out());

    Map<String, Tensor> actual = AttentionTableRows.read(output, "doc", "t", "y", seqs);
    for (Map.Entry<String, Tensor> s : seqs.entrySet()) {
      Tensor expected;
      try (MultiAxisAttention local = MultiAxisAttention.builder(E, HEADS, 0).weights(w)
          .causal(true).threads(1).build()) {
        expected = local.forward(s.getValue());
      }
      assertNotNull(actual.get(s.getKey()), s.getKey());
      double err = RelativeError.of(actual.get(s.getKey()), expected);
      assertTrue(err < 1e-5, s.getKey() + ": relative error " + err);
    }
  }

  @Test
  void badInputFailsWithOneLineAndKeepsThePreviousOutput() throws Exception {
    Map<String, Tensor> seqs = new LinkedHashMap<>();
    seqs.put("a", Tensor.randn(rnd, 1f, 6, E));
    seqs.put("b", Tensor.randn(rnd, 1f, 9, E));
    Path weights = dir.resolve("w.safetensors");
    Safetensors.write(weights, weights().toMap(""));
    String bad = dir.resolve("bad.parquet").toString();
    writeInput(seqs, bad, 4);
    String output = dir.resolve("out.parquet").toString();
    TestSpark.get().range(5).write().parquet(output); // a previous result
    String[] common = {"--weights", weights.toString(), "--num-heads", "2", "--output", output,
        "--key-col", "doc", "--pos-col", "t", "--emb-col", "x", "--master", "local[2]"};
    Result r = run(concat(new String[] {"attention-table", "--input", bad}, common));
    assertEquals(2, r.code(), r.out() + r.err());
    assertEquals("mosaic attention-table: error: key 'b' is missing position 4 (it has 8 rows,"
        + " positions up to 8); positions must be 0..n-1 without gaps or duplicates",
        r.err().strip());
    assertEquals(5, TestSpark.get().read().parquet(output).count(), "previous output kept");
    try (var files = Files.list(dir)) {
      assertFalse(files.anyMatch(p -> p.getFileName().toString().contains("mosaic-staging")));
    }
    Result missing = run(concat(new String[] {"attention-table", "--input",
        dir.resolve("nope.parquet").toString()}, common));
    assertEquals(2, missing.code());
    assertTrue(missing.err().contains("nope.parquet: no such Parquet file or folder"),
        missing.err());
  }

  /**
   * Rows (doc, t, x) with x as array<double> (as pandas writes it); {@code drop} >= 0 leaves out
   * that position of key "b".
   */
  private static void writeInput(Map<String, Tensor> seqs, String path, int drop) {
    SparkSession spark = TestSpark.get();
    List<Row> rows = new ArrayList<>();
    for (Map.Entry<String, Tensor> s : seqs.entrySet()) {
      Tensor x = s.getValue();
      for (int t = 0; t < x.dim(0); t++) {
        if (t == drop && s.getKey().equals("b")) {
          continue;
        }
        double[] v = new double[E];
        for (int i = 0; i < E; i++) {
          v[i] = x.data()[t * E + i];
        }
        rows.add(RowFactory.create(s.getKey(), t, v));
      }
    }
    Collections.shuffle(rows, new Random(TestSeed.mix(TestSeed.get(), 7)));
    spark.createDataFrame(rows, new StructType()
            .add("doc", DataTypes.StringType, false)
            .add("t", DataTypes.IntegerType, false)
            .add("x", DataTypes.createArrayType(DataTypes.DoubleType, false), false))
        .repartition(3).write().parquet(path);
  }

  private AttentionWeights weights() {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * E, E), Tensor.randn(rnd, 0.1f, 3 * E),
        Tensor.randn(rnd, 0.3f, E, E), Tensor.randn(rnd, 0.1f, E));
  }

  private static String[] concat(String[] a, String[] b) {
    String[] out = new String[a.length + b.length];
    System.arraycopy(a, 0, out, 0, a.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
