package dev.mosaic.spark.runner;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;

/**
 * Prints one line per finished task and per finished stage (stage, tasks done, elapsed, rate),
 * so long jobs are not silent, and keeps each stage's time for the final report.
 */
public final class StageProgress extends SparkListener {
  /** One finished stage. */
  public record StageTime(int stageId, String name, int tasks, double seconds, boolean failed) {}

  private final PrintStream out;
  private final Map<Integer, long[]> started = new ConcurrentHashMap<>(); // id -> {nanos, done}
  private final Map<Integer, Integer> taskCounts = new ConcurrentHashMap<>();
  private final List<StageTime> stages = new ArrayList<>();

  public StageProgress(PrintStream out) {
    this.out = out;
  }

  @Override
  public void onStageSubmitted(SparkListenerStageSubmitted e) {
    StageInfo s = e.stageInfo();
    started.put(s.stageId(), new long[] {System.nanoTime(), 0});
    taskCounts.put(s.stageId(), s.numTasks());
    out.printf("  [stage %d] %s: %d task(s) started%n", s.stageId(), shortName(s.name()),
        s.numTasks());
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd e) {
    long[] st = started.get(e.stageId());
    if (st == null) {
      return;
    }
    long done;
    synchronized (st) {
      done = ++st[1];
    }
    double secs = (System.nanoTime() - st[0]) / 1e9;
    out.printf("  [stage %d] %d/%d tasks done, %.1f s elapsed, %.2f tasks/s%n", e.stageId(), done,
        taskCounts.getOrDefault(e.stageId(), 0), secs, done / Math.max(secs, 1e-9));
  }

  @Override
  public void onStageCompleted(SparkListenerStageCompleted e) {
    StageInfo s = e.stageInfo();
    long[] st = started.remove(s.stageId());
    double secs = st == null ? 0 : (System.nanoTime() - st[0]) / 1e9;
    boolean failed = s.failureReason().isDefined();
    synchronized (stages) {
      stages.add(new StageTime(s.stageId(), shortName(s.name()), s.numTasks(), secs, failed));
    }
    out.printf("  [stage %d] %s %s in %.1f s%n", s.stageId(), shortName(s.name()),
        failed ? "FAILED" : "finished", secs);
  }

  public List<StageTime> stages() {
    synchronized (stages) {
      return new ArrayList<>(stages);
    }
  }

  private static String shortName(String name) {
    int at = name.indexOf(" at ");
    return at > 0 ? name.substring(0, at) : name;
  }
}
