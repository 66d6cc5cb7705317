package dev.mosaic.spark.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** The mosaic CLI run in this JVM with its standard output and error captured, for CLI tests. */
public final class CliRun {
  private CliRun() {}

  /** Exit code and what the command printed. */
  public record Result(int code, String out, String err) {
    public List<String> errLines() {
      return err.strip().isEmpty() ? List.of() : err.strip().lines().toList();
    }
  }

  public static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Mosaic.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8),
        err.toString(StandardCharsets.UTF_8));
  }

  public static Result run(List<String> args) {
    return run(args.toArray(new String[0]));
  }
}
