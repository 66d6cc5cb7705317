package dev.mosaic.spark.bench;

import dev.mosaic.spark.runner.SparkSessions;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * {@code mosaic bench soak}: many consecutive attention jobs in one SparkSession ({@link SoakJobs}:
 * every strategy, causal and not, two kinds of planned failure), with a {@link ResourceSnapshot}
 * of the driver JVM after every {@code every} jobs. With a {@code local[N]} master the tasks run
 * in this JVM too, so the snapshot sees everything Mosaic holds: its threads, sockets, buffers.
 * Ends with a {@link LeakVerdict} between the first snapshot (after the warm-up) and the last.
 *
 * <p>Spark keeps the history of its jobs for the UI and the status tracker; the session here
 * keeps only the last 20 jobs, stages and SQL executions, so that Spark's own bookkeeping reaches
 * its plateau during the warm-up and does not pass for a leak.
 */
public final class SoakBenchmark {
  /** The settings the soak session adds. */
  public static final Map<String, String> SESSION_CONF = Map.of(
      "spark.ui.enabled", "false",
      "spark.ui.retainedJobs", "20",
      "spark.ui.retainedStages", "20",
      "spark.sql.ui.retainedExecutions", "20");
  private static final long SEED = 20240601;
  private static final long SETTLE_MS = 10_000;

  /** What the soak found. */
  public record Result(int jobs, List<ResourceSnapshot> snapshots, int asPlanned,
      List<SoakJobs.Outcome> unexpected, LeakVerdict verdict) {
    /** Every job went as planned and nothing grew. */
    public boolean passed() {
      return unexpected.isEmpty() && (verdict == null || verdict.flat());
    }
  }

  private SoakBenchmark() {}

  /** Runs the soak on a session of its own on {@code master}; exit code 0 if it passed. */
  public static int run(String master, int jobs, int every, int sp, PrintStream out) {
    SparkSession spark = SparkSessions.getOrCreate(master, "mosaic-bench-soak", SESSION_CONF);
    try {
      spark.sparkContext().setJobGroup("mosaic-soak", "Mosaic soak benchmark", false);
      return run(spark, jobs, every, sp, out).passed() ? 0 : 1;
    } finally {
      spark.stop();
    }
  }

  /** Runs {@code jobs} jobs of {@code sp} tasks on {@code spark}, reporting every {@code every}. */
  public static Result run(SparkSession spark, int jobs, int every, int sp, PrintStream out) {
    if (jobs < 1 || every < 1) {
      throw new IllegalArgumentException("jobs and every must be at least 1, got jobs " + jobs
          + ", every " + every);
    }
    SoakJobs soak = new SoakJobs(spark, sp, SEED);
    out.printf("Soak: %d jobs of %d tasks on %s, a snapshot every %d jobs; the cycle:%n", jobs,
        sp, spark.sparkContext().master(), every);
    for (SoakJobs.Kind k : SoakJobs.Kind.values()) {
      out.printf("  %s%n", k.label);
    }
    out.printf("%6s %5s %8s %10s %8s %8s %7s %5s %11s %14s %8s%n", "jobs", "ok", "planned",
        "unexpected", "threads", "working", "mosaic", "fds", "direct MiB", "heap MiB (GC)",
        "seconds");
    List<ResourceSnapshot> snapshots = new ArrayList<>();
    List<SoakJobs.Outcome> unexpected = new ArrayList<>();
    int ok = 0;
    int planned = 0;
    long t0 = System.nanoTime();
    for (int i = 0; i < jobs; i++) {
      SoakJobs.Outcome o = soak.run(i);
      if (o.problem() != null) {
        unexpected.add(o);
        out.printf("  job %d (%s): %s%n", i + 1, o.kind().label, o.problem());
      } else if (o.kind().failsOnPurpose()) {
        planned++;
      } else {
        ok++;
      }
      if ((i + 1) % every == 0 || i + 1 == jobs) {
        ResourceSnapshot s = ResourceSnapshot.take(i + 1, SETTLE_MS);
        snapshots.add(s);
        out.printf("%6d %5d %8d %10d %8d %8d %7d %5d %11.1f %14.1f %8.0f%n", s.jobs(), ok,
            planned, unexpected.size(), s.threads(), s.workingThreads(), s.mosaicThreads(),
            s.openFds(),
            s.directBytes() / 1048576.0, s.heapAfterGcBytes() / 1048576.0,
            (System.nanoTime() - t0) / 1e9);
      }
    }
    LeakVerdict verdict = null;
    if (snapshots.size() >= 2) {
      ResourceSnapshot warm = snapshots.get(0);
      ResourceSnapshot end = snapshots.get(snapshots.size() - 1);
      verdict = LeakVerdict.compare(warm, end);
      out.printf("Growth from %d to %d jobs (the first %d warm up):%n", warm.jobs(), end.jobs(),
          warm.jobs());
      verdict.lines().forEach(l -> out.println("  " + l));
      if (!verdict.threadGrowth().isEmpty()) {
        out.println("  all live threads " + warm.threads() + " -> " + end.threads()
            + " (not judged: Spark's cached pools follow recent activity); by name: "
            + String.join("; ", verdict.threadGrowth()));
      }
    }
    Result r = new Result(jobs, List.copyOf(snapshots), planned, List.copyOf(unexpected),
        verdict);
    out.println("Verdict: " + (verdict == null ? "too few snapshots to compare (need 2)"
        : verdict.flat() ? "flat" : "grew") + "; " + (ok + planned) + " of " + jobs
        + " jobs as planned" + (unexpected.isEmpty() ? "" : ", " + unexpected.size()
        + " NOT as planned") + " -> " + (r.passed() ? "PASS" : "FAIL"));
    return r;
  }
}
