package dev.mosaic.spark.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * "Nothing may grow": compares a snapshot taken after a warm-up with one taken at the end, metric
 * by metric, each with a stated slack. The slack absorbs what a warm JVM and Spark still do
 * lazily (a pool thread started on first use, a heap that settles at a slightly different level
 * after each full GC); a leak of one thread, socket or buffer per job exceeds it after 150 jobs.
 */
public record LeakVerdict(List<Line> lines, List<String> threadGrowth) {
  /**
   * Extra threads allowed that are not idle pool workers (a feature Spark uses late starts its
   * fixed threads then). All live threads are reported but not judged: Spark's cached pools
   * follow recent activity (see {@link ResourceSnapshot}).
   */
  public static final int THREAD_SLACK = 8;
  /** Mosaic's own threads must all be gone between jobs. */
  public static final int MOSAIC_THREAD_SLACK = 0;
  /** Extra file descriptors allowed (jar and log files Spark opens lazily). */
  public static final long FD_SLACK = 16;
  /** Extra direct memory allowed. */
  public static final long DIRECT_SLACK_BYTES = 8L << 20;
  /** Extra heap after GC allowed: the larger of this and {@link #HEAP_SLACK_FRACTION}. */
  public static final long HEAP_SLACK_BYTES = 32L << 20;
  public static final double HEAP_SLACK_FRACTION = 0.10;

  /** One metric: its value after the warm-up and at the end, and how much growth is allowed. */
  public record Line(String metric, long from, long to, long slack, String unit) {
    public boolean grew() {
      return from >= 0 && to >= 0 && to - from > slack;
    }

    @Override
    public String toString() {
      double div = unit.equals("MiB") ? 1 << 20 : 1;
      String fmt = unit.equals("MiB") ? "%.1f" : "%.0f";
      return String.format("%-16s %s -> %s %s (%+.1f, slack %s): %s", metric,
          String.format(fmt, from / div), String.format(fmt, to / div), unit,
          (to - from) / div, String.format(fmt, slack / div), grew() ? "GREW" : "flat");
    }
  }

  public static LeakVerdict compare(ResourceSnapshot warm, ResourceSnapshot end) {
    List<Line> lines = new ArrayList<>();
    lines.add(new Line("working threads", warm.workingThreads(), end.workingThreads(),
        THREAD_SLACK, "threads"));
    lines.add(new Line("mosaic threads", warm.mosaicThreads(), end.mosaicThreads(),
        MOSAIC_THREAD_SLACK, "threads"));
    lines.add(new Line("open fds", warm.openFds(), end.openFds(), FD_SLACK, "fds"));
    lines.add(new Line("direct memory", warm.directBytes(), end.directBytes(),
        DIRECT_SLACK_BYTES, "MiB"));
    lines.add(new Line("heap after GC", warm.heapAfterGcBytes(), end.heapAfterGcBytes(),
        Math.max(HEAP_SLACK_BYTES, (long) (HEAP_SLACK_FRACTION * warm.heapAfterGcBytes())),
        "MiB"));
    return new LeakVerdict(List.copyOf(lines), threadGrowth(warm, end));
  }

  /** Thread names whose count changed, e.g. {@code "shuffle-exchange-# +5"}. */
  static List<String> threadGrowth(ResourceSnapshot warm, ResourceSnapshot end) {
    java.util.Set<String> names = new java.util.TreeSet<>(warm.threadsByName().keySet());
    names.addAll(end.threadsByName().keySet());
    List<String> out = new ArrayList<>();
    for (String n : names) {
      int d = end.threadsByName().getOrDefault(n, 0) - warm.threadsByName().getOrDefault(n, 0);
      if (d != 0) {
        out.add(String.format("%s %+d", n, d));
      }
    }
    return out;
  }

  public boolean flat() {
    return lines.stream().noneMatch(Line::grew);
  }
}
