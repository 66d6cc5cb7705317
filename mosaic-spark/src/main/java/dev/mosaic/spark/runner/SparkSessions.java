package dev.mosaic.spark.runner;

import java.util.HashMap;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * The SparkSession the CLI runs on: the active one, or one built from spark-submit's settings, or
 * one built on the CLI's {@code --master}.
 *
 * <p>Two system properties, which {@code bin/mosaic} sets, let a session whose executors are
 * other JVMs ({@code local-cluster}, or a cluster used in client mode without spark-submit) run
 * Mosaic code:
 * <ul>
 *   <li>{@code mosaic.appJar}: comma-separated jars holding Mosaic's classes, added to
 *       {@code spark.jars} (executors only have Spark's own jars on their class path);
 *   <li>{@code mosaic.executorJavaOptions}: JVM flags for executors (the Vector API module for the
 *       SIMD kernel, the opens, the log4j2 configuration), put before any
 *       {@code spark.executor.extraJavaOptions} the user set, so that the user's flags win.
 * </ul>
 * Under spark-submit neither is set: the application jar and the options come from spark-submit.
 */
public final class SparkSessions {
  static final String APP_JAR = "mosaic.appJar";
  static final String EXECUTOR_JAVA_OPTIONS = "mosaic.executorJavaOptions";

  private SparkSessions() {}

  /**
   * Gets the active session or builds one on {@code master} with the settings barrier jobs want:
   * the slot check re-tried every second rather than every 15 s, no console progress bar (the CLI
   * prints its own progress), and {@code extra} on top; then, unless set, a barrier sync timeout
   * bounded by the communicator's ({@link #boundBarrierSync}).
   *
   * <p>Run by spark-submit (system property {@code spark.master} set), spark-submit's master and
   * application name are kept and {@code master} is ignored: the CLI's {@code --master} default
   * must not turn a cluster submission into a local run.
   */
  public static SparkSession getOrCreate(String master, String appName, Map<String, String> extra) {
    String submitted = System.getProperty("spark.master");
    String effective = submitted != null ? submitted : master;
    Map<String, String> conf = new HashMap<>();
    conf.put("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s");
    conf.put("spark.ui.showConsoleProgress", "false");
    if (effective != null && effective.startsWith("local")) {
      // One machine: keep driver traffic on the loopback.
      conf.put("spark.driver.host", "127.0.0.1");
      conf.put("spark.driver.bindAddress", "127.0.0.1");
    }
    conf.putAll(extra);
    boundBarrierSync(conf);
    if (effective != null && !inProcess(effective)) {
      requireSparkHome(effective);
      String jars = System.getProperty(APP_JAR);
      if (jars != null && !jars.isBlank()) {
        append(conf, "spark.jars", jars, ",");
      }
      String opts = System.getProperty(EXECUTOR_JAVA_OPTIONS);
      if (opts != null && !opts.isBlank()) {
        prepend(conf, "spark.executor.extraJavaOptions", opts, " ");
      }
    }

    SparkSession.Builder b = SparkSession.builder();
    if (submitted == null) {
      b.appName(appName);
      if (master != null) {
        b.master(master);
      }
    }
    conf.forEach(b::config);
    SparkSession s = b.getOrCreate();
    s.sparkContext().setLogLevel("WARN");
    return s;
  }

  /**
   * Sets {@code spark.barrier.sync.timeout} to {@code spark.mosaic.comm.timeout} (rounded up to
   * seconds) unless the user set it. Spark's default is 365 days, so a task whose peer never
   * reaches the rendezvous (its executor stopped) would wait that long; with this bound Spark's
   * coordinator fails the round and answers every waiting task ({@link BoundedAllGather}). The
   * driver reads the setting once, when the first barrier stage runs, so it must be in place
   * before the SparkContext starts: a session that already exists keeps its own value.
   */
  static void boundBarrierSync(Map<String, String> conf) {
    if (userValue(conf, BoundedAllGather.SPARK_SYNC_TIMEOUT) != null) {
      return;
    }
    String comm = userValue(conf, MosaicConfig.COMM_TIMEOUT);
    MosaicConfig config = comm == null ? MosaicConfig.defaults()
        : MosaicConfig.defaults().with(MosaicConfig.COMM_TIMEOUT, comm);
    long seconds = (config.commTimeout().toMillis() + 999) / 1000;
    conf.put(BoundedAllGather.SPARK_SYNC_TIMEOUT, seconds + "s");
  }

  /**
   * The master when the user names none: {@code local[max(cores, tasks)]}. Barrier tasks must all
   * run at once, so a job of more tasks than cores still needs a slot per task; CPU tasks then
   * share the cores (each runs {@code spark.mosaic.task.threads} threads, default 1).
   */
  public static String defaultMaster(int tasks) {
    return "local[" + Math.max(Runtime.getRuntime().availableProcessors(), tasks) + "]";
  }

  /** {@code local} and {@code local[..]} run tasks in this JVM; everything else in executors. */
  static boolean inProcess(String master) {
    return master.equals("local") || master.startsWith("local[");
  }

  /**
   * local-cluster starts executors through Spark's launcher, which needs a Spark home; without
   * one it fails deep inside with "Cannot find any build directories". Say what to set instead.
   */
  private static void requireSparkHome(String master) {
    if (!master.startsWith("local-cluster")) {
      return;
    }
    String home = System.getenv("SPARK_HOME");
    if (home == null || System.getenv("SPARK_SCALA_VERSION") == null) {
      throw new IllegalArgumentException("--master " + master + " starts executor JVMs through"
          + " Spark's launcher, which needs SPARK_HOME (a folder with a RELEASE file and jars/"
          + " holding Spark's jars) and SPARK_SCALA_VERSION=2.13 in the environment; bin/mosaic"
          + " sets both (now SPARK_HOME=" + home + ", SPARK_SCALA_VERSION="
          + System.getenv("SPARK_SCALA_VERSION") + ")");
    }
  }

  /** Adds {@code value} after what the caller or a system property already set for {@code key}. */
  private static void append(Map<String, String> conf, String key, String value, String sep) {
    String user = userValue(conf, key);
    conf.put(key, user == null ? value : user + sep + value);
  }

  /** Adds {@code value} before the user's value, so that a later, user-given flag wins. */
  private static void prepend(Map<String, String> conf, String key, String value, String sep) {
    String user = userValue(conf, key);
    conf.put(key, user == null ? value : value + sep + user);
  }

  /** The value from {@code extra}, else from a system property (spark-defaults, -D). */
  private static String userValue(Map<String, String> conf, String key) {
    String v = conf.getOrDefault(key, System.getProperty(key));
    return v == null || v.isBlank() ? null : v;
  }
}
