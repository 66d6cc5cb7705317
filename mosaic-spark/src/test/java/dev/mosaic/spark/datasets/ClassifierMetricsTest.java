package dev.mosaic.spark.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mosaic.spark.runner.TestSpark;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.ml.evaluation.BinaryClassificationEvaluator;
import org.apache.spark.ml.evaluation.MulticlassClassificationEvaluator;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** Accuracy and AUC by hand, and against MLlib's evaluators where those apply. */
class ClassifierMetricsTest {
  @Test
  void handComputedCases() {
    // binary: positives score 0.9, 0.4; negatives 0.4, 0.1 → pairs: (0.9>0.4)(0.9>0.1)(0.4=0.4)
    // (0.4>0.1) → (3 + 0.5) / 4
    float[] p = {0.1f, 0.9f, 0.6f, 0.4f, 0.6f, 0.4f, 0.9f, 0.1f};
    int[] y = {1, 1, 0, 0};
    assertEquals(0.875, ClassifierMetrics.rocAuc(p, 2, y), 1e-12);
    // predicted 1, 0, 0, 0 against labels 1, 1, 0, 0
    assertEquals(0.75, ClassifierMetrics.accuracy(p, 2, y), 1e-12);
    // three classes, perfectly ranked for every class → macro AUC 1
    float[] q = {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.1f, 0.2f, 0.7f};
    assertEquals(1.0, ClassifierMetrics.rocAuc(q, 3, new int[] {0, 1, 2}), 1e-12);
    // a class absent from the labels has no AUC and is left out of the mean
    assertEquals(1.0, ClassifierMetrics.rocAuc(q, 3, new int[] {0, 1, 1}), 1e-12);
  }

  @Test
  void agreesWithMllibsEvaluators() {
    Random rnd = new Random(TestSeed.get());
    int n = 300;
    int classes = 2;
    float[] p = new float[n * classes];
    int[] y = new int[n];
    List<Row> rows = new ArrayList<>();
    for (int r = 0; r < n; r++) {
      y[r] = rnd.nextInt(classes);
      // informative, with ties: scores rounded to 0.05
      float s = Math.round(Math.min(1, Math.max(0, 0.3 * y[r] + 0.7 * rnd.nextDouble())) * 20)
          / 20f;
      p[r * 2] = 1 - s;
      p[r * 2 + 1] = s;
      rows.add(RowFactory.create((double) y[r], Vectors.dense(1 - s, s),
          s > 0.5f ? 1.0 : 0.0));
    }
    StructType schema = new StructType().add("label", DataTypes.DoubleType)
        .add("rawPrediction", SQLDataTypes.VectorType()).add("prediction", DataTypes.DoubleType);
    Dataset<Row> df = TestSpark.get().createDataFrame(rows, schema);
    double mllibAuc = new BinaryClassificationEvaluator().setMetricName("areaUnderROC")
        .setNumBins(0).evaluate(df);
    assertEquals(mllibAuc, ClassifierMetrics.rocAuc(p, classes, y), 1e-9);
    double mllibAcc = new MulticlassClassificationEvaluator().setMetricName("accuracy")
        .evaluate(df);
    // MLlib's prediction above is "s > 0.5"; ours takes the first class on a tie at 0.5: equal.
    assertEquals(mllibAcc, ClassifierMetrics.accuracy(p, classes, y), 1e-12);
  }
}
