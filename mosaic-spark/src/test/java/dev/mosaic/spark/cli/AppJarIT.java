package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.jobs.AttentionTableRows;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.spark.runner.TestSpark;
import dev.mosaic.test.TestSeed;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The application jar as spark-submit gets it (issue #16): {@code plan --plot} runs from it with
 * only Spark's jars beside it, as on a cluster whose Spark has no JFreeChart; and the batch job
 * {@code attention-table} (issue #14) runs through Spark's own {@code SparkSubmit} from it.
 */
@Timeout(300)
class AppJarIT {
  @TempDir Path dir;

  @Test
  void planPlotsFromTheAppJarAlone() throws IOException, InterruptedException {
    Path app = appJar();
    try (JarFile jar = new JarFile(app.toFile())) {
      assertNotNull(jar.getEntry("org/jfree/chart/JFreeChart.class"), app + " bundles JFreeChart");
      assertNotNull(jar.getEntry("dev/mosaic/spark/cli/Mosaic.class"), app + " holds the CLI");
    }
    Path png = dir.resolve("plan.png");
    List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "--add-modules=jdk.incubator.vector", "-Xmx512m", "-cp", classPath(app),
        "dev.mosaic.spark.cli.Mosaic", "plan", "--seq", "65536", "--heads", "8", "--head-dim",
        "64", "--gpus", "4", "--plot", png.toString());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "plan timed out:\n" + out);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("Chart: " + png), out);
    byte[] head = Files.readAllBytes(png);
    assertTrue(head.length > 1000 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G',
        "a PNG of " + head.length + " bytes");
  }

  /**
   * {@code spark-submit APP_JAR attention-table}: a ragged Parquet table (one sequence too long
   * for the forced task memory, so it is sharded over a barrier stage) comes back equal to the
   * local layer on each sequence alone, within 1e-5 relative (fp32 sums of a few hundred terms,
   * ~1e-7 each, merged across two shards: well under it).
   */
  @Test
  void attentionTableRunsThroughSparkSubmit() throws Exception {
    int e = 8;
    int heads = 2;
    Random rnd = TestSeed.random();
    Map<String, Tensor> seqs = new LinkedHashMap<>();
    List<Row> rows = new ArrayList<>();
    for (int n : new int[] {1, 6, 23, 80}) {
      Tensor x = Tensor.randn(rnd, 1f, n, e);
      seqs.put("s" + n, x);
      for (int t = 0; t < n; t++) {
        rows.add(RowFactory.create("s" + n, t, Arrays.copyOfRange(x.data(), t * e, t * e + e)));
      }
    }
    String input = dir.resolve("in.parquet").toString();
    TestSpark.get().createDataFrame(rows, new StructType()
            .add("key", DataTypes.StringType, false).add("pos", DataTypes.IntegerType, false)
            .add("emb", DataTypes.createArrayType(DataTypes.FloatType, false), false))
        .repartition(2).write().parquet(input);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    Path weights = dir.resolve("w.safetensors");
    Safetensors.write(weights, w.toMap(""));
    long memory = RaggedPlanner.wholeMemory(40, new RaggedPlanner.Settings(heads, e / heads, 1,
        true, Long.MAX_VALUE, 1L << 30, 2, 2, "ring")); // up to 40 positions fit a task
    String output = dir.resolve("out.parquet").toString();
    List<String> cmd = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g"));
    cmd.addAll(Arrays.asList(System.getProperty("mosaic.executorJavaOptions").trim()
        .split("\\s+")));
    cmd.addAll(List.of("-cp", classPath(appJar()), "org.apache.spark.deploy.SparkSubmit",
        "--master", "local[2]", "--conf", "spark.driver.host=127.0.0.1", "--class",
        "dev.mosaic.spark.cli.Mosaic", appJar().toString(), "attention-table", "--input", input,
        "--weights", weights.toString(), "--num-heads", Integer.toString(heads), "--causal",
        "--output", output, "--sp", "2", "--task-memory", Long.toString(memory),
        "--threads", "1"));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(240, TimeUnit.SECONDS), "spark-submit timed out:\n" + out);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("sharded: 1 sequence in 1 barrier stage(s)"), out);
    assertTrue(out.contains("wrote 110 rows (4 sequences) to " + output), out);

    Map<String, Tensor> actual = AttentionTableRows.read(output, "key", "pos", "attention", seqs);
    for (Map.Entry<String, Tensor> s : seqs.entrySet()) {
      Tensor expected;
      try (MultiAxisAttention local = MultiAxisAttention.builder(e, heads, 0).weights(w)
          .causal(true).threads(1).build()) {
        expected = local.forward(s.getValue());
      }
      assertNotNull(actual.get(s.getKey()), s.getKey() + " missing from the output:\n" + out);
      double err = RelativeError.of(actual.get(s.getKey()), expected);
      assertTrue(err < 1e-5, s.getKey() + ": relative error " + err);
    }
  }

  /** mosaic-spark-VERSION-app.jar beside the plain jar failsafe names. */
  private static Path appJar() {
    String plain = System.getProperty("mosaic.appJar");
    assertNotNull(plain, "failsafe sets mosaic.appJar");
    Path app = Path.of(plain.replaceAll("\\.jar$", "-app.jar"));
    assertTrue(Files.isRegularFile(app), "no " + app + " (mvn package builds it)");
    return app;
  }

  /**
   * The app jar and what a Spark distribution holds: the test class path's jars without Mosaic's
   * own and without JFreeChart.
   */
  private static String classPath(Path app) {
    String cp = System.getProperty("surefire.test.class.path",
        System.getProperty("java.class.path"));
    List<String> out = new ArrayList<>(List.of(app.toString()));
    for (String entry : cp.split(File.pathSeparator)) {
      String name = Path.of(entry).getFileName().toString();
      if (entry.endsWith(".jar") && !name.startsWith("mosaic-") && !name.startsWith("jfreechart")
          && !name.startsWith("junit") && !name.startsWith("surefire")) {
        out.add(entry);
      }
    }
    return String.join(File.pathSeparator, out);
  }
}
