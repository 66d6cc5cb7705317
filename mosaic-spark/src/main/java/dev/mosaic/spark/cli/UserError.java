package dev.mosaic.spark.cli;

/** A mistake in what the user asked for: printed as one line, no stack trace, exit code 2. */
public final class UserError extends RuntimeException {
  public UserError(String message) {
    super(message);
  }
}
