package dev.mosaic.spark.runner;

import java.io.Serializable;
import java.util.List;
import org.apache.spark.SparkContext;
import org.apache.spark.util.CollectionAccumulator;
import scala.Option;

/**
 * The failures of one barrier stage that a retry would repeat, carried to the driver by a Spark
 * accumulator that keeps the values of <em>failed</em> tasks. Spark merges such an accumulator on
 * the driver before it decides what a task failure means for the stage, so the driver knows of the
 * failure synchronously: before it serializes a retry of the stage (which {@link BarrierRunner}
 * then cuts short) and before the job's exception reaches the code that ran the action.
 *
 * <p>The public {@code SparkContext.register} drops a failed task's updates; keeping them takes
 * {@code AccumulatorV2.register(sc, name, countFailedValues = true)}, which Scala declares
 * {@code private[spark]} and the JVM sees as public. Spark has kept that signature since 2.0.
 */
final class FailureLog implements Serializable {
  private static final long serialVersionUID = 1L;
  private final CollectionAccumulator<TaskFailure> failures;

  private FailureLog(CollectionAccumulator<TaskFailure> failures) {
    this.failures = failures;
  }

  /** On the driver, before the stage's closure is built. */
  static FailureLog register(SparkContext sc) {
    CollectionAccumulator<TaskFailure> acc = new CollectionAccumulator<>();
    acc.register(sc, Option.empty(), true);
    return new FailureLog(acc);
  }

  /** In a task: reaches the driver with the task's failure. */
  void add(TaskFailure failure) {
    failures.add(failure);
  }

  /** On the driver: every failure recorded so far, oldest first. */
  List<TaskFailure> all() {
    return failures.value();
  }
}
