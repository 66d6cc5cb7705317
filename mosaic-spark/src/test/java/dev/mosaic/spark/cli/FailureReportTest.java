package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.CancelledException;
import dev.mosaic.kernels.io.SafetensorsException;
import dev.mosaic.spark.comm.CommException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.apache.spark.SparkException;
import org.junit.jupiter.api.Test;

/** Exit codes and the one line for each kind of failure, including those no flag can provoke. */
class FailureReportTest {
  private static final String BARRIER_FAILURE = "Job aborted due to stage failure: Could not"
      + " recover from a failed barrier ResultStage. Most recent failure reason: Stage failed"
      + " because barrier task ResultTask(0, 1) finished unsuccessfully.\n"
      + "java.lang.IllegalStateException: rank 1: peer rank 0 closed the connection\n"
      + "\tat dev.mosaic.X.y(X.java:1)\n\tat dev.mosaic.X.z(X.java:2)\n";

  private record Report(int code, String err) {}

  private static Report report(Throwable t, boolean verbose) {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = FailureReport.report("attention", t, verbose,
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Report(code, err.toString(StandardCharsets.UTF_8));
  }

  private static void assertLine(int code, String line, Throwable t) {
    Report r = report(t, false);
    assertEquals(code, r.code(), t.toString());
    assertEquals("mosaic attention: error: " + line + System.lineSeparator(), r.err());
  }

  @Test
  void missingJFreeChartSaysWhatIsMissing() {
    assertLine(1, "charts need JFreeChart (org.jfree:jfreechart:1.5.6) on the class path, and it"
        + " is not there (missing org/jfree/chart/JFreeChart); use mosaic-spark-<version>-app.jar,"
        + " which bundles it, or add it with --jars",
        new NoClassDefFoundError("org/jfree/chart/JFreeChart"));
  }

  @Test
  void tensorFileErrorsExitTwo() {
    assertLine(2, "tensor file x.npy: dtype '<i8' is not supported",
        new dev.mosaic.kernels.io.TensorFileException(Path.of("x.npy"), null,
            "dtype '<i8' is not supported"));
  }

  @Test
  void usageErrorsExitTwo() {
    assertLine(2, "--sp expects an integer, got 'x'",
        new UserError("--sp expects an integer, got 'x'"));
    assertLine(2, "bad axis", new IllegalArgumentException("bad axis"));
    assertLine(2, "safetensors file x.safetensors, tensor 'x': truncated",
        new SafetensorsException(Path.of("x.safetensors"), "x", "truncated"));
  }

  @Test
  void runtimeFailuresExitOne() {
    assertLine(1, "no slots", new IllegalStateException("no slots"));
    assertLine(1, "rank 1 timed out", new CommException("rank 1 timed out"));
    assertLine(1, "cancelled: stage 3 killed", new CancelledException("stage 3 killed"));
    assertLine(1, "disk full", new IOException("disk full"));
    assertLine(1, "disk full", new UncheckedIOException(new IOException("disk full")));
  }

  @Test
  void aJobCancelledForANonRetryableTaskFailureShowsTheReasonOnly() {
    assertLine(1, "Spark job failed: Mosaic task 1 failed with an error that a retry would repeat:"
        + " row 7 has 3 features, expected 8",
        new SparkException("Job 12 cancelled because Mosaic task 1 failed with an error that a"
            + " retry would repeat: row 7 has 3 features, expected 8"));
  }

  @Test
  void sparkFailuresShowTheTasksReasonOnly() {
    assertLine(1, "Spark job failed: rank 1: peer rank 0 closed the connection",
        new SparkException(BARRIER_FAILURE));
    assertLine(1, "Spark job failed: the reason",
        new SparkException("Job aborted", new IllegalStateException("the reason\nmore")));
    assertLine(1, "Spark job failed: boom", new SparkException("Job aborted due to stage failure:"
        + " Task 0 in stage 0.0 failed 1 times, most recent failure: Lost task 0.0 in stage 0.0"
        + " (TID 0) (127.0.0.1 executor driver): java.lang.ArithmeticException: boom\n\tat x.y"));
    assertLine(1, "Spark job failed: Job aborted: no reason given",
        new SparkException("Job aborted: no reason given"));
  }

  @Test
  void outOfMemoryNamesTheHeapSetting() {
    String heap = FailureReport.heapFlag();
    assertTrue(heap.startsWith("-Xmx"), heap);
    assertLine(1, "out of memory: Java heap space; raise MOSAIC_HEAP (now " + heap + ")",
        new OutOfMemoryError("Java heap space"));
    assertLine(1, "out of memory: Java heap space; raise MOSAIC_HEAP (now " + heap + ")",
        new SparkException("Job aborted", new OutOfMemoryError("Java heap space")));
  }

  @Test
  void anythingElseIsAnInternalErrorThatPointsAtVerbose() {
    assertLine(1, "internal error: java.lang.NullPointerException: oops; rerun with --verbose for"
        + " the trace", new NullPointerException("oops"));
    assertLine(1, "internal error: java.lang.StackOverflowError; rerun with --verbose for the"
        + " trace", new StackOverflowError());
  }

  @Test
  void longAndMultiLineMessagesBecomeOneShortLine() {
    String line = report(new IllegalStateException("x".repeat(5000) + " (the hint)\nsecond"),
        false).err();
    assertEquals(1, line.strip().lines().count());
    assertTrue(line.contains("xxx ... xxx") && line.strip().endsWith("x (the hint)"), line);
    assertTrue(line.length() < FailureReport.MAX_REASON + 100, "length " + line.length());
    assertLine(1, "first line", new IllegalStateException("first line\n\tat somewhere"));
    // doctor prints the whole reason of a failed cluster check (every rank's, and the hint).
    String reason = "rank 0: " + "y".repeat(600) + "\nrank 1: z";
    assertEquals(reason, FailureReport.taskReason(new SparkException("Job aborted due to stage"
        + " failure: barrier task failed.\njava.lang.IllegalStateException: " + reason
        + "\n\tat x.y(Y.java:1)")));
  }

  @Test
  void verboseAddsTheTrace() {
    Report r = report(new IllegalStateException("no slots"), true);
    assertEquals(1, r.code());
    assertTrue(r.err().startsWith("mosaic attention: error: no slots" + System.lineSeparator()
        + "java.lang.IllegalStateException: no slots"), r.err());
    assertTrue(r.err().contains("\tat dev.mosaic.spark.cli.FailureReportTest"), r.err());
  }
}
