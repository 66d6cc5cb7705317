package dev.mosaic.spark.faults;

import org.apache.spark.TaskContext;
import org.apache.spark.sql.api.java.UDF1;

/**
 * A UDF that passes its value through, except that the first attempt of the task that meets
 * {@code failOn} throws: a transient failure in whatever stage evaluates it (a write, say).
 * Shipped to executors in the fault jar.
 */
public final class FailFirstAttempt implements UDF1<Long, Long> {
  private static final long serialVersionUID = 1L;
  private final long failOn;

  public FailFirstAttempt(long failOn) {
    this.failOn = failOn;
  }

  @Override
  public Long call(Long value) {
    if (value == failOn && TaskContext.get().attemptNumber() == 0) {
      throw new IllegalStateException("injected failure of the first attempt at value " + value);
    }
    return value;
  }
}
