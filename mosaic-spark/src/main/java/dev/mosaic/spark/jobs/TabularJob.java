package dev.mosaic.spark.jobs;

import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.runner.MosaicContext;
import java.io.Serializable;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.CollectionAccumulator;

/**
 * The tabular job with seeded weights: synthetic tables, and {@link #predict} for callers that
 * size the model with a {@link TabularConfig} instead of bringing a checkpoint. The work is done
 * by {@link NanoTabPfnJob} with {@link NanoTabPfnInit#seeded} weights
 * ({@link TabularConfig#seededWeights}).
 */
public final class TabularJob {
  /** Input columns (as {@link NanoTabPfnJob#INPUT}). */
  public static final StructType INPUT = NanoTabPfnJob.INPUT;

  /** Output columns (as {@link NanoTabPfnJob#OUTPUT}). */
  public static final StructType OUTPUT = NanoTabPfnJob.OUTPUT;

  /** What one task did, for the report. */
  public record TaskReport(int rank, int rows, long firstRow, double seconds, long allocatedBytes,
      long executorHeapPeakBytes, String host) implements Serializable {}

  private TabularJob() {}

  /** A synthetic table generated in parallel by Spark, identical to {@link SyntheticTable}. */
  public static Dataset<Row> synthetic(SparkSession spark, long rows, int features, int classes,
      long seed, int partitions) {
    SyntheticTable.Generator gen = new SyntheticTable.Generator(features, classes, seed);
    JavaRDD<Row> rdd = spark.range(0, rows, 1, partitions).javaRDD().map(id -> {
      float[] f = new float[features];
      int label = gen.row(id, f, 0);
      return RowFactory.create(id, f, label);
    });
    return spark.createDataFrame(rdd, INPUT);
  }

  /**
   * {@link NanoTabPfnJob#predict} over {@code table} (schema {@link #INPUT}, row ids 0..n−1, rows
   * of {@code cfg.features()} features) with the config's seeded weights. Lazy.
   */
  public static Dataset<Row> predict(MosaicContext ctx, Dataset<Row> table, long rowCount,
      long nTrain, TabularConfig cfg, CollectionAccumulator<TaskReport> reports) {
    return NanoTabPfnJob.predict(ctx, table,
        new NanoTabPfnJob.TableSize(rowCount, nTrain, cfg.features()), cfg.seededWeights(),
        cfg.heads(), reports);
  }

  /** The softmax of {@code logits[off .. off + len)}. */
  public static float[] softmax(float[] logits, int off, int len) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < len; i++) {
      max = Math.max(max, logits[off + i]);
    }
    float[] p = new float[len];
    double sum = 0;
    for (int i = 0; i < len; i++) {
      p[i] = (float) Math.exp(logits[off + i] - max);
      sum += p[i];
    }
    for (int i = 0; i < len; i++) {
      p[i] /= (float) sum;
    }
    return p;
  }
}
