package dev.mosaic.spark.cli;

import dev.mosaic.spark.runner.SparkSessions;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import scala.Option;

/**
 * A SparkSession started on first use and stopped on close: {@code predict} needs one only to
 * read a table or to run a ring stage, and a tensor run on the local backend should not pay
 * Spark's start-up. A session that was already running (a notebook's, a test's) is used and left
 * running: close stops only a session this class started.
 */
final class LazySpark implements AutoCloseable {
  private final String master;
  private final String appName;
  private final Map<String, String> conf;
  private SparkSession session;
  private boolean started;

  /** @param master null for spark-submit's or the default */
  LazySpark(String master, String appName, Map<String, String> conf) {
    this.master = master;
    this.appName = appName;
    this.conf = Map.copyOf(conf);
  }

  SparkSession get() {
    if (session == null) {
      started = !running(SparkSession.getActiveSession()) && !running(
          SparkSession.getDefaultSession());
      session = SparkSessions.getOrCreate(master, appName, conf);
    }
    return session;
  }

  @Override
  public void close() {
    if (session != null && started) {
      session.stop();
    }
    session = null;
  }

  private static boolean running(Option<SparkSession> s) {
    return s.isDefined() && !s.get().sparkContext().isStopped();
  }
}
