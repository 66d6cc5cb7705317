package dev.mosaic.kernels;

/**
 * Asked by a long computation, between tiles, whether it should stop early: a Spark task that was
 * killed (its stage failed or was cancelled) must not compute on for seconds until its next
 * communicator wait. Kernels know nothing of Spark; the runner hands them one that reads the
 * task's kill flag.
 */
@FunctionalInterface
public interface Cancellation {
  /** Never asks to stop. */
  Cancellation NEVER = () -> null;

  /**
   * Why the computation should stop, or {@code null} to go on. Called often and from worker
   * threads: it must be cheap (a volatile read) and thread-safe.
   */
  String reason();

  /** Throws {@link CancelledException} when {@link #reason()} says to stop. */
  default void check() {
    String why = reason();
    if (why != null) {
      throw new CancelledException(why);
    }
  }
}
