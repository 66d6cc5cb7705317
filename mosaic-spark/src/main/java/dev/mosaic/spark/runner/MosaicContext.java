package dev.mosaic.spark.runner;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Entry point on the driver: {@link #init} checks that the cluster can run {@code spSize}
 * barrier tasks at once and returns a context that the sharded layers and jobs run through. On a
 * cluster whose Spark RPC is not authenticated and encrypted it warns, once per session, that
 * Mosaic's job secret is exposed ({@link SecurityWarning}).
 */
public final class MosaicContext {
  private final SparkSession spark;
  private final int spSize;
  private final MosaicConfig config;

  private MosaicContext(SparkSession spark, int spSize, MosaicConfig config) {
    this.spark = spark;
    this.spSize = spSize;
    this.config = config;
  }

  /** Settings from the session's {@code spark.mosaic.*} keys. */
  public static MosaicContext init(SparkSession spark, int spSize) {
    return init(spark, spSize, MosaicConfig.from(spark.sparkContext().getConf()));
  }

  public static MosaicContext init(SparkSession spark, int spSize, MosaicConfig config) {
    if (spSize < 1) {
      throw new IllegalArgumentException("spSize must be at least 1, got " + spSize);
    }
    config.validate();
    SecurityWarning.logOnce(spark.sparkContext());
    SlotCheck.require(spark.sparkContext(), spSize, config);
    return new MosaicContext(spark, spSize, config);
  }

  public SparkSession spark() {
    return spark;
  }

  public JavaSparkContext jsc() {
    return JavaSparkContext.fromSparkContext(spark.sparkContext());
  }

  /** Number of sequence shards, one barrier task each. */
  public int spSize() {
    return spSize;
  }

  public MosaicConfig config() {
    return config;
  }

  /** The same context with one setting changed for the calls made through it. */
  public MosaicContext with(String key, String value) {
    return new MosaicContext(spark, spSize, config.with(key, value));
  }
}
