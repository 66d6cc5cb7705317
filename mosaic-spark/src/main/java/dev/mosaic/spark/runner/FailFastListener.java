package dev.mosaic.spark.runner;

import java.util.Collections;
import java.util.Set;
import java.util.WeakHashMap;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * Cancels the jobs of a barrier stage as soon as one of its tasks fails with an error that a
 * retry would repeat ({@link NonRetryableTaskException}). Spark would otherwise re-run a barrier
 * stage that feeds a shuffle up to {@code spark.stage.maxConsecutiveAttempts} times (4). The job
 * then fails with Spark's {@code Job N cancelled because <the task's message>}. Listeners run
 * after the scheduler, so a retry may already be on its way: {@link BarrierRunner}'s tasks of such
 * a retry compute nothing and wait for the cancel.
 */
final class FailFastListener extends SparkListener {
  private static final Set<SparkContext> INSTALLED =
      Collections.synchronizedSet(Collections.newSetFromMap(new WeakHashMap<>()));

  private final SparkContext sc;

  private FailFastListener(SparkContext sc) {
    this.sc = sc;
  }

  /** Adds the listener to {@code sc} once. */
  static void installOn(SparkContext sc) {
    if (INSTALLED.add(sc)) {
      sc.addSparkListener(new FailFastListener(sc));
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    if (end.reason() instanceof ExceptionFailure f
        && f.className().equals(NonRetryableTaskException.class.getName())) {
      sc.cancelStage(end.stageId(), reason(end.taskInfo().index(), f.description()));
    }
  }

  /** Spark prints it as "Job N cancelled because (this)". */
  static String reason(int rank, String message) {
    return "Mosaic task " + rank + " failed with an error that a retry would repeat: " + message;
  }
}
