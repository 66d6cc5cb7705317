package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.CommException;
import java.io.IOException;
import java.util.concurrent.TimeoutException;
import org.apache.spark.SparkException;
import org.apache.spark.TaskKilledException;

/**
 * Which task failures a retry can cure. Only transient ones: the communicator failed (a peer died,
 * a timeout, a dropped connection: {@link CommException}), I/O or a wait timed out, or Spark
 * itself failed the task (a kill, a lost shuffle block, a barrier sync error: Spark's own
 * exceptions, which its scheduler must see unchanged). Everything else — bad input
 * ({@link IllegalArgumentException}), a broken invariant, a bug, a cancelled kernel — fails the
 * same way on every attempt, so the job fails at once with the task's message instead of running
 * up to {@code spark.stage.maxConsecutiveAttempts} times. Errors ({@link OutOfMemoryError}, a
 * missing native library) are left to Spark, which treats most as fatal to the executor.
 */
final class RetryPolicy {
  private static final int MAX_DEPTH = 16;
  /** Spark's own (package-private in Scala): a shuffle block is lost, Spark re-runs its map. */
  private static final String FETCH_FAILED = "org.apache.spark.shuffle.FetchFailedException";

  private RetryPolicy() {}

  static boolean retryable(Throwable e) {
    if (e instanceof Error) {
      return true;
    }
    Throwable t = e;
    for (int depth = 0; t != null && depth < MAX_DEPTH; depth++, t = t.getCause()) {
      if (t instanceof CommException || t instanceof IOException || t instanceof TimeoutException
          || t instanceof InterruptedException || t instanceof SparkException
          || t instanceof TaskKilledException || t.getClass().getName().equals(FETCH_FAILED)) {
        return true;
      }
    }
    return false;
  }
}
