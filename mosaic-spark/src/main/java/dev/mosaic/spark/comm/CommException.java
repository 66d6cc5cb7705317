package dev.mosaic.spark.comm;

/** A communication failure: timeout, peer gone, bad frame, failed authentication. */
public class CommException extends RuntimeException {
  public CommException(String message) {
    super(message);
  }

  public CommException(String message, Throwable cause) {
    super(message, cause);
  }
}
