package dev.mosaic.spark.datasets;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.ml.classification.LogisticRegression;
import org.apache.spark.ml.classification.ProbabilisticClassificationModel;
import org.apache.spark.ml.classification.RandomForestClassifier;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Spark MLlib's classifiers as baselines, trained on a split's train rows and scored on its test
 * rows: {@code LogisticRegression} (standardised features, L2 regParam 0.01, about
 * scikit-learn's default {@code C = 1} at these sizes; up to 100 L-BFGS iterations; multinomial
 * above two classes) and {@code RandomForestClassifier} (100 trees, seeded, MLlib's defaults
 * otherwise). The tables are tiny, so each sits in one cached partition: every L-BFGS iteration
 * and every tree level is a Spark job, and one task per job keeps that overhead small.
 */
public final class MllibBaselines {
  /** The baselines, with the names the report uses. */
  public enum Kind {
    LOGISTIC_REGRESSION("MLlib LogisticRegression"),
    RANDOM_FOREST("MLlib RandomForest");

    private final String label;

    Kind(String label) {
      this.label = label;
    }

    public String label() {
      return label;
    }
  }

  private static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("label", DataTypes.DoubleType, false)
      .add("features", SQLDataTypes.VectorType(), false);

  private MllibBaselines() {}

  /**
   * The test rows' class probabilities {@code (tests, classes)} row-major, in the split's row
   * order.
   */
  public static float[] probabilities(SparkSession spark, TrainTestSplit split, Kind kind,
      long seed) {
    Dataset<Row> train = frame(spark, split, 0, split.nTrain());
    Dataset<Row> test = frame(spark, split, split.nTrain(), split.rows());
    try {
      return score(split, kind, seed, train, test);
    } finally {
      train.unpersist();
      test.unpersist();
    }
  }

  private static float[] score(TrainTestSplit split, Kind kind, long seed, Dataset<Row> train,
      Dataset<Row> test) {
    ProbabilisticClassificationModel<Vector, ?> model = switch (kind) {
      case LOGISTIC_REGRESSION -> new LogisticRegression().setMaxIter(100).setRegParam(0.01)
          .fit(train);
      case RANDOM_FOREST -> new RandomForestClassifier().setNumTrees(100).setSeed(seed)
          .fit(train);
    };
    List<Row> scored = new ArrayList<>(
        model.transform(test).select("id", "probability").collectAsList());
    scored.sort(Comparator.comparingLong(r -> r.getLong(0)));
    int classes = split.classes();
    float[] p = new float[split.tests() * classes];
    for (int i = 0; i < scored.size(); i++) {
      Vector v = scored.get(i).getAs(1);
      if (v.size() != classes) {
        throw new IllegalStateException(kind.label() + " on " + split.name() + " gave "
            + v.size() + " probabilities per row, expected " + classes);
      }
      for (int c = 0; c < classes; c++) {
        p[i * classes + c] = (float) v.apply(c);
      }
    }
    return p;
  }

  private static Dataset<Row> frame(SparkSession spark, TrainTestSplit s, int from, int to) {
    List<Row> rows = new ArrayList<>(to - from);
    int f = s.features();
    for (int r = from; r < to; r++) {
      double[] v = new double[f];
      for (int j = 0; j < f; j++) {
        v[j] = s.x()[r * f + j];
      }
      rows.add(RowFactory.create((long) r, (double) s.y()[r], Vectors.dense(v)));
    }
    return spark.createDataFrame(rows, SCHEMA).coalesce(1).cache();
  }
}
