package dev.mosaic.ml;

import org.apache.spark.sql.SparkSession;

/** The SparkSession the mosaic-ml tests share: local[3] barrier stages, loopback, short waits. */
final class MlTestSpark {
  private MlTestSpark() {}

  static SparkSession start(String appName) {
    SparkSession spark = SparkSession.builder().master("local[3]").appName(appName)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.barrier.sync.timeout", "60s")
        .config("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s")
        .config("spark.mosaic.comm.timeout", "60s")
        .config("spark.sql.shuffle.partitions", "3")
        .getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    return spark;
  }
}
