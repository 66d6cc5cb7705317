package dev.mosaic.spark.runner;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;

/**
 * Can the cluster run {@code spSize} barrier tasks at once? Spark only finds out after a long
 * retry loop (SPARK-24819: up to ~10 min by default); we ask the scheduler's own count up front
 * and fail in seconds with the settings to change.
 */
final class SlotCheck {
  private static final Pattern LOCAL = Pattern.compile("local\\[(\\*|\\d+)(?:,\\s*\\d+)?]");
  private static final Pattern LOCAL_CLUSTER =
      Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*]");

  private SlotCheck() {}

  /** Throws when dynamic allocation is on or the slots stay short of {@code spSize}. */
  static void require(SparkContext sc, int spSize, MosaicConfig config) {
    SparkConf conf = sc.getConf();
    if (conf.getBoolean("spark.dynamicAllocation.enabled", false)) {
      throw new IllegalStateException("Mosaic runs barrier stages, which need a fixed set of"
          + " executors: set spark.dynamicAllocation.enabled=false (and spark.executor.instances)");
    }
    long deadline = System.nanoTime() + config.executorWait().toNanos();
    int slots = slots(sc);
    while (slots < spSize && !sc.isLocal() && System.nanoTime() < deadline) {
      try {
        Thread.sleep(200); // executors may still be registering
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      slots = slots(sc);
    }
    if (slots < spSize) {
      throw new IllegalStateException(explain(sc, spSize, slots, config));
    }
  }

  /** Task slots for the default resource profile, as the barrier scheduler counts them. */
  static int slots(SparkContext sc) {
    try {
      // private[spark] in Scala, public in bytecode: the exact count Spark's barrier check uses,
      // GPUs and spark.task.cpus included.
      return sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile());
    } catch (LinkageError e) {
      return estimate(sc.getConf(), sc.master());
    }
  }

  /** A fallback from the master URL and confs when the scheduler cannot be asked. */
  static int estimate(SparkConf conf, String master) {
    int taskCpus = conf.getInt("spark.task.cpus", 1);
    Matcher m = LOCAL.matcher(master);
    if (master.equals("local")) {
      return 1 / taskCpus;
    }
    if (m.matches()) {
      int cores = m.group(1).equals("*") ? Runtime.getRuntime().availableProcessors()
          : Integer.parseInt(m.group(1));
      return cores / taskCpus;
    }
    Matcher c = LOCAL_CLUSTER.matcher(master);
    if (c.matches()) {
      return Integer.parseInt(c.group(1)) * (Integer.parseInt(c.group(2)) / taskCpus);
    }
    return Integer.MAX_VALUE; // unknown cluster manager: leave the check to Spark
  }

  static String explain(SparkContext sc, int spSize, int slots, MosaicConfig config) {
    SparkConf conf = sc.getConf();
    StringBuilder b = new StringBuilder();
    b.append("Mosaic needs ").append(spSize).append(" barrier tasks running at once, but master ")
        .append(sc.master()).append(" offers ").append(slots).append(" task slot(s)");
    if (!sc.isLocal()) {
      b.append(" after waiting ").append(config.executorWait().toSeconds())
          .append(" s for executors (").append(MosaicConfig.EXECUTOR_WAIT).append(")");
    }
    b.append(". Settings now: spark.task.cpus=").append(conf.get("spark.task.cpus", "1"));
    for (String k : new String[] {"spark.executor.instances", "spark.executor.cores",
        "spark.executor.resource.gpu.amount", "spark.task.resource.gpu.amount"}) {
      if (conf.contains(k)) {
        b.append(", ").append(k).append('=').append(conf.get(k));
      }
    }
    b.append(". Fix: use fewer shards (--sp ").append(Math.max(1, slots)).append("), or give the")
        .append(" cluster more slots: ");
    if (sc.isLocal()) {
      b.append("--master local[").append(spSize).append("] or more");
    } else {
      b.append("more executors (spark.executor.instances), more cores per executor")
          .append(" (spark.executor.cores), fewer cores per task (spark.task.cpus), or more")
          .append(" GPUs per executor relative to spark.task.resource.gpu.amount");
    }
    return b.toString();
  }
}
