package dev.mosaic.ml;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.model.TabularModel;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The pipeline stage over real Spark barrier stages, against the model run in one JVM. */
@Timeout(180)
class TabularAttentionClassifierTest {
  private static SparkSession spark;

  @BeforeAll
  static void start() {
    spark = SparkSession.builder().master("local[2]").appName("mosaic-ml-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.barrier.sync.timeout", "30s")
        .config("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s")
        .config("spark.mosaic.comm.timeout", "30s")
        .getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @Test
  void pipelineAddsPredictionsEqualToTheUnshardedModel() {
    int rows = 600;
    int features = 5;
    int classes = 3;
    long seed = 1 + dev.mosaic.test.TestSeed.random().nextInt(1000);
    Dataset<Row> df = TabularJob.synthetic(spark, rows, features, classes, seed, 3)
        .withColumn("extra", functions.lit("kept"));
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setNumTrainRows(480)
        .setNumClasses(classes).setShards(2).setSeed(99);
    PipelineModel model = new Pipeline().setStages(new PipelineStage[] {clf}).fit(df);
    Dataset<Row> out = model.transform(df);
    assertEquals(List.of("row_id", "features", "label", "extra", "prediction", "probability"),
        List.of(out.columns()));
    List<Row> got = out.orderBy("row_id").collectAsList();
    assertEquals(rows, got.size());

    SyntheticTable table = SyntheticTable.generate(rows, features, classes, seed);
    Tensor logits;
    try (TabularModel local = new TabularModel(
        new TabularConfig(features, classes, 32, 2, 2, 64, 99), null, 2)) {
      logits = local.forward(Tensor.of(table.values(), rows, features), table.labels(), 0, 480);
    }
    int[] expectedPred = TabularModel.argMax(logits);
    double worst = 0;
    for (int r = 0; r < rows; r++) {
      Row row = got.get(r);
      assertEquals("kept", row.getString(3));
      assertEquals(expectedPred[r], row.getInt(4), "prediction of row " + r);
      List<Float> p = row.getList(5);
      float[] e = TabularJob.softmax(logits.data(), r * classes, classes);
      for (int c = 0; c < classes; c++) {
        worst = Math.max(worst, Math.abs(p.get(c) - e[c]));
      }
    }
    assertTrue(worst < 1e-5, "max |Δprobability| " + worst);
  }

  @Test
  void paramsSurviveSaveAndLoad(@TempDir Path dir) throws Exception {
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setNumTrainRows(10)
        .setNumClasses(4).setShards(3).setFeaturesCol("f");
    String path = dir.resolve("clf").toString();
    clf.write().save(path);
    TabularAttentionClassifier back = TabularAttentionClassifier.load(path);
    assertEquals(clf.uid(), back.uid());
    assertEquals(10L, back.getOrDefault(back.numTrainRows()));
    assertEquals(4, back.getOrDefault(back.numClasses()));
    assertEquals(3, back.getOrDefault(back.shards()));
    assertEquals("f", back.getOrDefault(back.featuresCol()));
  }

  @Test
  void badInputsNameTheColumnOrParam() {
    Dataset<Row> df = TabularJob.synthetic(spark, 20, 2, 2, 1, 1);
    assertEquals("TabularAttentionClassifier needs numTrainRows",
        assertThrows(IllegalArgumentException.class,
            () -> new TabularAttentionClassifier().transform(df)).getMessage());
    assertEquals("column 'feats' is missing; the input has [row_id, features, label]",
        assertThrows(IllegalArgumentException.class,
            () -> new TabularAttentionClassifier().setNumTrainRows(5).setFeaturesCol("feats")
                .transform(df)).getMessage());
    assertEquals("column 'label' must be a numeric type, got string",
        assertThrows(IllegalArgumentException.class,
            () -> new TabularAttentionClassifier().setNumTrainRows(5)
                .transform(df.withColumn("label", functions.lit("x")))).getMessage());
    assertEquals("numTrainRows 50 exceeds the 20 input rows",
        assertThrows(IllegalArgumentException.class,
            () -> new TabularAttentionClassifier().setNumTrainRows(50).transform(df))
            .getMessage());
  }
}
