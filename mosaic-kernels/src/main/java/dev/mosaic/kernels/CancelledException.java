package dev.mosaic.kernels;

/** A computation stopped between tiles because its {@link Cancellation} asked it to. */
public final class CancelledException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public CancelledException(String reason) {
    super("cancelled: " + reason);
  }
}
