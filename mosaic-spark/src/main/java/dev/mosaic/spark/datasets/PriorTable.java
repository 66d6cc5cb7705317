package dev.mosaic.spark.datasets;

import dev.mosaic.spark.jobs.NanoTabPfnJob;
import dev.mosaic.spark.prior.Prior;
import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.prior.PriorSizes;
import java.io.Serializable;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;

/**
 * The demo's large table (part b): one table of exactly the requested sizes drawn from the
 * pretraining prior ({@link Prior#sample(int, int, int, double, long...)}) with {@link #SEED}, a
 * seed no training run uses, so the shipped model has never seen it. It is drawn once on the
 * driver (a few seconds and ~1 KB per row even at 150,000 rows); Spark reads it from a broadcast,
 * each partition emitting its own range of row ids.
 */
public final class PriorTable {
  /**
   * The prior seed of the demo's table. Training draws from its own seed (recorded in every
   * checkpoint's metadata as {@code mosaic_pretrain_prior_seed}); keep the two apart.
   */
  public static final long SEED = 0xDE30_7AB1EL;

  private PriorTable() {}

  /** The table: {@code rows} rows (the first {@code nTrain()} the train rows). */
  public static PriorDataset draw(int rows, int features, int classes, double trainFraction) {
    return new Prior(PriorSizes.defaults(), SEED).sample(rows, features, classes,
        trainFraction, rows, features, classes);
  }

  /** What the tasks read: the features row-major and the labels. */
  private record Columns(float[] x, float[] y, int features) implements Serializable {}

  /**
   * {@code table} as a DataFrame of schema {@link NanoTabPfnJob#INPUT} (row ids 0..rows−1, the
   * train rows first) over {@code partitions} partitions. Lazy; the broadcast lives until Spark's
   * cleaner drops it with the DataFrame, so a retried stage can read it again.
   */
  public static Dataset<Row> toDataFrame(SparkSession spark, PriorDataset table,
      int partitions) {
    Broadcast<Columns> cols = JavaSparkContext.fromSparkContext(spark.sparkContext())
        .broadcast(new Columns(table.x(), table.y(), table.features()));
    int f = table.features();
    return spark.createDataFrame(spark.range(0, table.rows(), 1, partitions).javaRDD().map(id -> {
      Columns c = cols.value();
      int r = (int) (long) id;
      float[] row = new float[f];
      System.arraycopy(c.x(), r * f, row, 0, f);
      return RowFactory.create(id, row, (int) c.y()[r]);
    }), NanoTabPfnJob.INPUT);
  }
}
