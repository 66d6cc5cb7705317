package dev.mosaic.test;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Mosaic's own warnings and errors reach the build's console, although surefire and failsafe
 * redirect each test class's output into its {@code -output.txt}: Mosaic logs through
 * {@code System.Logger}, that is java.util.logging under logger {@code dev.mosaic}, and this adds a
 * handler there that writes WARNING and above to the JVM's own stderr, past the redirect. At most
 * {@value #SHOWN} lines per test class and logger, then a count, so that a test that provokes
 * warnings on purpose cannot flood the build; every record also stays in the output file.
 * Registered for every test class through {@code META-INF/services}.
 */
public final class MosaicWarnings implements BeforeAllCallback, AfterAllCallback {
  static final int SHOWN = 3;

  /** Held here: java.util.logging keeps loggers only weakly, and with them their handlers. */
  private static final Logger MOSAIC = Logger.getLogger("dev.mosaic");

  private static final Echo ECHO = new Echo(
      new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));

  static {
    MOSAIC.addHandler(ECHO);
  }

  /** Writes WARNING and above to {@code stderr}, counting per test class and logger. */
  static final class Echo extends Handler {
    private final PrintStream stderr;
    private final Map<String, Integer> seen = new TreeMap<>();
    private String testClass = "";

    Echo(PrintStream stderr) {
      this.stderr = stderr;
      setLevel(Level.WARNING);
      setFormatter(new SimpleFormatter()); // for formatMessage: the record's parameters
    }

    @Override
    public synchronized void publish(LogRecord record) {
      if (!isLoggable(record)) {
        return;
      }
      String name = record.getLoggerName() == null ? "" : record.getLoggerName();
      String logger = name.substring(name.lastIndexOf('.') + 1);
      int n = seen.merge(logger, 1, Integer::sum);
      if (n <= SHOWN) {
        Throwable t = record.getThrown();
        stderr.println("[mosaic] " + record.getLevel() + " " + logger + ": "
            + getFormatter().formatMessage(record) + (t == null ? "" : " (" + t + ")"));
      }
    }

    /** Starts counting for another test class; says how many lines the last one held back. */
    synchronized void startClass(String name) {
      seen.forEach((logger, n) -> {
        if (n > SHOWN) {
          stderr.println("[mosaic] ... " + (n - SHOWN) + " more from " + logger + " in "
              + testClass + " (all in its -output.txt)");
        }
      });
      seen.clear();
      testClass = name;
    }

    @Override
    public void flush() {
      stderr.flush();
    }

    @Override
    public void close() {
      flush();
    }
  }

  @Override
  public void beforeAll(ExtensionContext context) {
    ECHO.startClass(context.getRequiredTestClass().getSimpleName());
  }

  @Override
  public void afterAll(ExtensionContext context) {
    ECHO.startClass("");
  }
}
