package dev.mosaic.spark.runner;

/**
 * How a barrier task reports a failure that a retry would repeat ({@link RetryPolicy}): the
 * task's own message, under a class name the driver's {@link FailFastListener} recognises in
 * Spark's task-end event. The task's error is the cause.
 */
final class NonRetryableTaskException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  NonRetryableTaskException(TaskFailure failure, Throwable cause) {
    super(failure.message(), cause);
  }
}
