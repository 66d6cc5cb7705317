package dev.mosaic.spark.cli;

import dev.mosaic.spark.runner.SparkSessions;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * A SparkSession started on first use and stopped on close: {@code predict} needs one only to
 * read a table or to run a ring stage, and a tensor run on the local backend should not pay
 * Spark's start-up.
 */
final class LazySpark implements AutoCloseable {
  private final String master;
  private final String appName;
  private final Map<String, String> conf;
  private SparkSession session;

  /** @param master null for spark-submit's or the default */
  LazySpark(String master, String appName, Map<String, String> conf) {
    this.master = master;
    this.appName = appName;
    this.conf = Map.copyOf(conf);
  }

  SparkSession get() {
    if (session == null) {
      session = SparkSessions.getOrCreate(master, appName, conf);
    }
    return session;
  }

  @Override
  public void close() {
    if (session != null) {
      session.stop();
      session = null;
    }
  }
}
