package dev.mosaic.spark.runner;

import org.apache.spark.sql.SparkSession;

/**
 * One local[4] session shared by the Spark tests of this JVM; short timeouts so hangs fail fast.
 * A test that runs the CLI in this JVM stops the active session (the CLI stops what it used), so
 * a stopped one is replaced: otherwise every later test would meet a dead context, depending on
 * the order surefire happens to run the classes in.
 */
public final class TestSpark {
  private static SparkSession session;

  private TestSpark() {}

  public static synchronized SparkSession get() {
    if (session == null || session.sparkContext().isStopped()) {
      session = SparkSession.builder()
          .master("local[4,2]") // 4 slots; a failed task may be retried once
          .appName("mosaic-tests")
          .config("spark.ui.enabled", "false")
          .config("spark.barrier.sync.timeout", "20s")
          .config("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s")
          .config("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "3")
          .config("spark.sql.shuffle.partitions", "4")
          .config("spark.driver.host", "127.0.0.1")
          .config("spark.driver.bindAddress", "127.0.0.1")
          .config(MosaicConfig.COMM_TIMEOUT, "20s")
          .config(MosaicConfig.EXECUTOR_WAIT, "5s")
          .getOrCreate();
      session.sparkContext().setLogLevel("WARN");
    }
    return session;
  }
}
