package dev.mosaic.spark.runner;

import java.io.Serializable;
import org.apache.spark.TaskContext;

/**
 * A task failure that a retry would repeat ({@link RetryPolicy}), as the driver learns of it:
 * where it happened, the task's error class and its message on one line.
 */
record TaskFailure(int stageId, int rank, String errorClass, String message)
    implements Serializable {

  static TaskFailure of(TaskContext ctx, Throwable e) {
    return new TaskFailure(ctx.stageId(), ctx.partitionId(), e.getClass().getName(), oneLine(e));
  }

  /**
   * What the driver throws for it: an {@link IllegalArgumentException} for bad input, an
   * {@link IllegalStateException} otherwise, with the task's message and Spark's job failure as
   * the cause (its message holds the task's stack trace).
   */
  RuntimeException toDriverException(Throwable jobFailure) {
    RuntimeException e = errorClass.equals(IllegalArgumentException.class.getName())
        ? new IllegalArgumentException(message) : new IllegalStateException(message);
    e.initCause(jobFailure);
    return e;
  }

  /** The message, else the class name, with line breaks folded: errors here are one line. */
  static String oneLine(Throwable e) {
    String m = e.getMessage() != null ? e.getMessage() : e.toString();
    return m.strip().replaceAll("\\s*\\R\\s*", " ");
  }
}
