package dev.mosaic.spark.cli;

import dev.mosaic.kernels.CancelledException;
import dev.mosaic.kernels.io.SafetensorsException;
import dev.mosaic.kernels.io.TensorFileException;
import dev.mosaic.spark.comm.CommException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkException;

/**
 * Turns whatever a command threw into one line on stderr and an exit code: {@link #USAGE} for a
 * mistake in the arguments or the input files, {@link #FAILED} for a run that went wrong. With
 * {@code --verbose} the stack trace follows the line.
 */
final class FailureReport {
  /** Bad usage: arguments, flags, input files. */
  static final int USAGE = 2;
  /** The run failed: a Spark job, the communicator, memory, I/O, a bug. */
  static final int FAILED = 1;
  /** Longest reason printed; Spark's messages can carry whole stack traces. */
  static final int MAX_REASON = 500;
  /** {@code bin/mosaic} sets it to the file conf/log4j2.properties writes the full log to. */
  static final String LOG_FILE_PROPERTY = "mosaic.logFile";

  /** "java.lang.IllegalStateException: " as Spark prints it before a task's message. */
  private static final Pattern EXCEPTION_PREFIX = Pattern.compile(
      "(?:[A-Za-z_$][\\w$]*\\.)+[A-Z][\\w$]*(?:Exception|Error|Throwable)(?:: |$)");

  /** Spark's wrapper when Mosaic's fail-fast listener cancelled a stage: the rest is the reason. */
  private static final Pattern JOB_CANCELLED = Pattern.compile("^Job \\d+ cancelled because ");

  private FailureReport() {}

  /** Prints the line ({@code mosaic <command>: error: ...}) and returns the exit code. */
  static int report(String command, Throwable t, boolean verbose, PrintStream err) {
    int code = exitCode(t);
    err.println("mosaic" + (command.isEmpty() ? "" : " " + command) + ": error: " + line(t));
    if (verbose) {
      t.printStackTrace(err);
    }
    return code;
  }

  static int exitCode(Throwable t) {
    return t instanceof UserError || t instanceof IllegalArgumentException
        || t instanceof SafetensorsException || t instanceof TensorFileException ? USAGE : FAILED;
  }

  /** The one line that says what went wrong, without the exception's class unless it helps. */
  static String line(Throwable t) {
    if (t instanceof UserError || t instanceof IllegalArgumentException
        || t instanceof SafetensorsException || t instanceof TensorFileException) {
      return oneLine(t.getMessage());
    }
    if (t instanceof OutOfMemoryError) {
      return outOfMemory(t);
    }
    if (t instanceof SparkException) {
      Throwable cause = taskCause(t);
      if (cause instanceof OutOfMemoryError) {
        return outOfMemory(cause);
      }
      return "Spark job failed: " + taskFailure(t) + logHint();
    }
    if (t instanceof UncheckedIOException && t.getCause() != null) {
      return line(t.getCause());
    }
    if (t instanceof NoClassDefFoundError
        && String.valueOf(t.getMessage()).startsWith("org/jfree/")) {
      // A jar without JFreeChart (the plain mosaic-spark jar under spark-submit): say so.
      return "charts need JFreeChart (org.jfree:jfreechart:1.5.6) on the class path, and it is not"
          + " there (missing " + t.getMessage() + "); use mosaic-spark-<version>-app.jar, which"
          + " bundles it, or add it with --jars";
    }
    if (t instanceof IllegalStateException || t instanceof CommException
        || t instanceof CancelledException || t instanceof IOException) {
      return oneLine(t.getMessage() == null ? t.toString() : t.getMessage());
    }
    return "internal error: " + oneLine(t.toString()) + "; rerun with --verbose for the trace";
  }

  /** {@link #taskReason} on one line of at most {@link #MAX_REASON} characters. */
  static String taskFailure(Throwable e) {
    return oneLine(taskReason(e));
  }

  /**
   * The task's own error where Spark kept it as the cause (it wraps it in a SparkException whose
   * message carries a stack trace), else the reason in Spark's message: the text after the first
   * "java.lang.SomeException: " (the task's exception) up to the stack trace. Not shortened.
   */
  static String taskReason(Throwable e) {
    Throwable cause = taskCause(e);
    if (cause != null && cause.getMessage() != null) {
      return cause.getMessage();
    }
    String m = String.valueOf(e.getMessage());
    int at = m.indexOf("\n\tat ");
    if (at > 0) {
      m = m.substring(0, at);
    }
    Matcher prefix = EXCEPTION_PREFIX.matcher(m);
    if (prefix.find() && prefix.end() < m.length()) {
      m = m.substring(prefix.end());
    }
    return JOB_CANCELLED.matcher(m.strip()).replaceFirst("");
  }

  /** The first exception in the chain that is not Spark's wrapper: what the task threw. */
  private static Throwable taskCause(Throwable e) {
    for (Throwable t = e; t != null && t.getCause() != t; t = t.getCause()) {
      if (!(t instanceof SparkException)) {
        return t;
      }
    }
    return null;
  }

  private static String outOfMemory(Throwable t) {
    return "out of memory: " + (t.getMessage() == null ? "no details" : oneLine(t.getMessage()))
        + "; raise MOSAIC_HEAP (now " + heapFlag() + ")";
  }

  /** The -Xmx this JVM was started with, else its maximum heap in MiB. */
  static String heapFlag() {
    String flag = null;
    for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (arg.startsWith("-Xmx")) {
        flag = arg; // the last one wins, as in the JVM
      }
    }
    return flag != null ? flag : "-Xmx" + (Runtime.getRuntime().maxMemory() >> 20) + "m";
  }

  private static String logHint() {
    String file = System.getProperty(LOG_FILE_PROPERTY);
    return file == null || file.isBlank() ? "" : " (full log: " + file + ")";
  }

  /**
   * The first line, at most about {@link #MAX_REASON} characters: a longer one keeps its start and
   * its end, where hints such as "(to run this stage over TCP instead, set ...)" go.
   */
  static String oneLine(String message) {
    String m = message == null ? "no message" : message.strip();
    int nl = m.indexOf('\n');
    if (nl >= 0) {
      m = m.substring(0, nl).strip();
    }
    int tail = MAX_REASON / 3;
    return m.length() <= MAX_REASON ? m
        : m.substring(0, MAX_REASON - tail) + " ... " + m.substring(m.length() - tail);
  }
}
