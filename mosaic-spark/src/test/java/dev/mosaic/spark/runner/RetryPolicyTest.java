package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.CancelledException;
import dev.mosaic.spark.comm.CommException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.TimeoutException;
import org.apache.spark.SparkException;
import org.apache.spark.TaskKilledException;
import org.junit.jupiter.api.Test;

class RetryPolicyTest {

  @Test
  void transientFailuresAreRetried() {
    assertTrue(RetryPolicy.retryable(new CommException("peer 2 closed the connection")));
    assertTrue(RetryPolicy.retryable(new BoundedAllGather.TimedOut("rendezvous", null)));
    assertTrue(RetryPolicy.retryable(new UncheckedIOException(new IOException("reset"))));
    assertTrue(RetryPolicy.retryable(
        new IllegalStateException("Mosaic task 1 of 4 failed", new TimeoutException())));
    assertTrue(RetryPolicy.retryable(new SparkException("barrier sync failed")));
    assertTrue(RetryPolicy.retryable(new TaskKilledException("stage cancelled")));
    assertTrue(RetryPolicy.retryable(new OutOfMemoryError("Java heap space")));
    // A transient cause deep inside a wrapper still counts.
    assertTrue(RetryPolicy.retryable(new RuntimeException("layer",
        new IllegalStateException("ring step", new CommException("timed out")))));
  }

  @Test
  void failuresThatWouldRecurAreNot() {
    assertFalse(RetryPolicy.retryable(
        new IllegalArgumentException("embedDim 16 is not divisible by numHeads 3")));
    assertFalse(RetryPolicy.retryable(new IllegalStateException("shard 2 received row 7 twice")));
    assertFalse(RetryPolicy.retryable(new CancelledException("Spark killed task 12")));
    assertFalse(RetryPolicy.retryable(new NullPointerException()));
    assertFalse(RetryPolicy.retryable(new ArithmeticException("integer overflow")));
  }

  @Test
  void theDriverGetsTheTasksErrorOnOneLine() {
    TaskFailure input = new TaskFailure(3, 1, IllegalArgumentException.class.getName(),
        "row 5 has 3 features, expected 4");
    SparkException job = new SparkException("Job aborted");
    RuntimeException e = input.toDriverException(job);
    assertInstanceOf(IllegalArgumentException.class, e);
    assertEquals("row 5 has 3 features, expected 4", e.getMessage());
    assertSame(job, e.getCause());

    RuntimeException other = new TaskFailure(3, 1, NullPointerException.class.getName(), "npe")
        .toDriverException(job);
    assertInstanceOf(IllegalStateException.class, other);

    assertEquals("first line second line", TaskFailure.oneLine(
        new IllegalStateException("first line\n  second line\n")));
    assertEquals("java.lang.NullPointerException",
        TaskFailure.oneLine(new NullPointerException()));
  }
}
