package dev.mosaic.spark.runner;

import java.util.Map;
import org.apache.spark.sql.SparkSession;

/** The SparkSession the CLI starts when it is not run by spark-submit. */
public final class SparkSessions {
  private SparkSessions() {}

  /**
   * Gets the active session (spark-submit made one) or builds one on {@code master} with the
   * settings barrier jobs want: the slot check re-tried every second rather than every 15 s, no
   * console progress bar (the CLI prints its own progress), and {@code extra} on top.
   */
  public static SparkSession getOrCreate(String master, String appName, Map<String, String> extra) {
    SparkSession.Builder b = SparkSession.builder().appName(appName)
        .config("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s")
        .config("spark.ui.showConsoleProgress", "false");
    if (master != null) {
      b.master(master);
    }
    if (master != null && master.startsWith("local")) {
      // One machine: keep driver traffic on the loopback.
      b.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1");
    }
    String appJar = System.getProperty("mosaic.appJar");
    if (appJar != null && master != null && master.startsWith("local-cluster")) {
      b.config("spark.jars", appJar); // executors in other JVMs need our classes
    }
    extra.forEach(b::config);
    SparkSession s = b.getOrCreate();
    s.sparkContext().setLogLevel("WARN");
    return s;
  }
}
