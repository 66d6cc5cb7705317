package dev.mosaic.spark.jobs;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.layers.SeparateProjections;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.spark.runner.TestSpark;
import dev.mosaic.test.TestSeed;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mosaic attention-table --num-heads H --num-kv-heads G} with Hugging Face-style
 * q/k/v/o_proj weights read as {@code mosaic attention} reads them: the PyTorch GQA fixture
 * ({@code tools/fixtures/gqa_fixtures.py}, H=6, G=2, whose file holds the weights) as two
 * sequences of a Parquet table beside random ones, one of them sharded over a barrier stage. The
 * fixture's rows equal PyTorch's y and every sequence the (PyTorch-checked) layer alone, within
 * 1e-5 (fp32 error model: see {@code PackedLayerGqaTest}). Bad head counts and shapes are one-line
 * errors before Spark starts.
 */
@Timeout(600) // a bound for a loaded machine, not an expectation: ~15 s on an idle one
class GqaAttentionTableTest {
  private static final double TOL = 1e-5;
  private static final int E = 24;
  private static final int HEADS = 6;

  @TempDir
  Path dir;
  private final Random rnd = TestSeed.random();

  @Test
  void separateProjectionsWithKeyValueHeadsEqualPyTorchPackedAndSharded() {
    Path weights = fixture("h6_g2_bias");
    Map<String, Tensor> t = Safetensors.read(weights);
    Map<String, Tensor> seqs = new LinkedHashMap<>();
    Map<String, Tensor> pytorch = new HashMap<>();
    for (int b = 0; b < 2; b++) {
      seqs.put("fixture-" + b, slice(t.get("x"), b)); // (2, 13, 24) along axis 1
      pytorch.put("fixture-" + b, slice(t.get("y"), b));
    }
    seqs.put("random-3", Tensor.randn(rnd, 1f, 3, E));
    seqs.put("random-50", Tensor.randn(rnd, 1f, 50, E));
    String input = dir.resolve("in.parquet").toString();
    writeInput(seqs, input);
    // Up to 20 positions fit a task: 3, 13 and 13 are packed, 50 is sharded.
    long memory = RaggedPlanner.wholeMemory(20, new RaggedPlanner.Settings(HEADS, E / HEADS, 1,
        false, Long.MAX_VALUE, 1L << 30, 2, 4, "ring", 2));
    String output = dir.resolve("out.parquet").toString();
    Result r = run("attention-table", "--input", input, "--weights", weights.toString(),
        "--num-heads", "6", "--num-kv-heads", "2", "--output", output, "--key-col", "doc",
        "--pos-col", "t", "--emb-col", "x", "--out-col", "y", "--sp", "2", "--task-memory",
        Long.toString(memory), "--master", "local[4]", "--threads", "1", "--device", "cpu");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("6 heads (2 K/V) x 4"), r.out());
    assertTrue(r.out().contains("packed: 3 sequences"), r.out());
    assertTrue(r.out().contains("sharded: 1 sequence in 1 barrier stage(s)"), r.out());

    Map<String, Tensor> actual = read(output, seqs);
    AttentionWeights w = SeparateProjections.read(t, "", E, HEADS, 2);
    for (Map.Entry<String, Tensor> s : seqs.entrySet()) {
      Tensor expected;
      try (MultiAxisAttention layer = MultiAxisAttention.builder(E, HEADS, 0).weights(w)
          .threads(1).build()) {
        expected = layer.forward(s.getValue());
      }
      check(s.getKey() + " vs the layer", actual.get(s.getKey()), expected);
    }
    for (Map.Entry<String, Tensor> s : pytorch.entrySet()) {
      check(s.getKey() + " vs PyTorch", actual.get(s.getKey()), s.getValue());
    }
  }

  @Test
  void badHeadCountsAndShapesAreOneLineErrorsBeforeSparkStarts() {
    String w = fixture("h6_g2_bias").toString();
    String[] common = {"attention-table", "--input", dir.resolve("in.parquet").toString(),
        "--output", dir.resolve("out.parquet").toString(), "--weights", w};
    assertError("--num-kv-heads 4 must divide --num-heads 6 (each K/V head serves H/G query"
        + " heads)", concat(common, "--num-heads", "6", "--num-kv-heads", "4"));
    assertError("weight 'k_proj.weight' has shape [8, 24], expected [12, 24] for embed 24,"
        + " 6 heads and 3 K/V heads", concat(common, "--num-heads", "6", "--num-kv-heads", "3"));
    assertError("--num-heads 5 must be positive and divide the embedding width 24 of --weights "
        + w, concat(common, "--num-heads", "5", "--num-kv-heads", "1"));
  }

  private static void assertError(String message, String... args) {
    Result r = run(args);
    assertEquals(2, r.code(), r.out() + r.err());
    assertEquals("mosaic attention-table: error: " + message, r.err().strip());
  }

  private static void check(String what, Tensor actual, Tensor expected) {
    double err = RelativeError.of(actual, expected);
    System.out.printf("%s: relative error %.2e%n", what, err);
    assertTrue(err < TOL, what + ": relative error " + err);
  }

  /** The output table's rows (doc, t, y) put back into one tensor per key. */
  private static Map<String, Tensor> read(String output, Map<String, Tensor> seqs) {
    return AttentionTableRows.read(output, "doc", "t", "y", seqs);
  }

  private static void writeInput(Map<String, Tensor> seqs, String path) {
    List<Row> rows = new ArrayList<>();
    for (Map.Entry<String, Tensor> s : seqs.entrySet()) {
      Tensor x = s.getValue();
      for (int t = 0; t < x.dim(0); t++) {
        rows.add(RowFactory.create(s.getKey(), t,
            Arrays.copyOfRange(x.data(), t * E, (t + 1) * E)));
      }
    }
    TestSpark.get().createDataFrame(rows, new StructType()
            .add("doc", DataTypes.StringType, false)
            .add("t", DataTypes.IntegerType, false)
            .add("x", DataTypes.createArrayType(DataTypes.FloatType, false), false))
        .repartition(2).write().parquet(path);
  }

  /** Batch element {@code b} of a (B, n, E) tensor, as (n, E). */
  private static Tensor slice(Tensor t, int b) {
    int size = t.dim(1) * t.dim(2);
    return Tensor.of(Arrays.copyOfRange(t.data(), b * size, (b + 1) * size), t.dim(1), t.dim(2));
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static Path fixture(String name) {
    try {
      return Path.of(GqaAttentionTableTest.class.getResource("/fixtures/gqa/layer_" + name
          + ".safetensors").toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + name + " is not on the test classpath", e);
    }
  }
}
