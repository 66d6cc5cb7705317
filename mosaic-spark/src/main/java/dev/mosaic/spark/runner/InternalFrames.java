package dev.mosaic.spark.runner;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.StructType;

/**
 * A DataFrame over rows that are already in Spark's internal form. {@code createDataFrame} takes
 * external {@code Row}s and converts every value, boxing each float of an array on the way; the
 * classic session's {@code internalCreateDataFrame} (public in the bytecode, Scala's
 * {@code private[sql]}) takes {@link InternalRow}s as they are, and Spark's scan turns them into
 * its binary rows with one projection.
 */
final class InternalFrames {
  private InternalFrames() {}

  /**
   * @param rows rows matching {@code schema} in internal form (UTF8String, array data, ...)
   * @throws IllegalStateException for a session that is not Spark's classic one (Spark Connect
   *     has no RDDs, which every Mosaic job needs)
   */
  static Dataset<Row> of(SparkSession spark, JavaRDD<InternalRow> rows, StructType schema) {
    if (!(spark instanceof org.apache.spark.sql.classic.SparkSession classic)) {
      throw new IllegalStateException("DataFrameAttention needs Spark's classic session (RDDs),"
          + " got " + spark.getClass().getName());
    }
    return classic.internalCreateDataFrame(rows.rdd(), schema, false);
  }
}
