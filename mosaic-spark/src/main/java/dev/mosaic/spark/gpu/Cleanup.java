package dev.mosaic.spark.gpu;

/**
 * Runs release steps in order, every one even when an earlier one failed, and keeps the first
 * failure with the later ones suppressed: what close methods need so that one failed free does
 * not leak the rest.
 */
final class Cleanup {
  private RuntimeException failure;

  /** Runs {@code step}, remembering its failure. */
  Cleanup run(Runnable step) {
    try {
      step.run();
    } catch (RuntimeException e) {
      add(e);
    }
    return this;
  }

  void add(RuntimeException e) {
    if (failure == null) {
      failure = e;
    } else if (failure != e) {
      failure.addSuppressed(e);
    }
  }

  /** Throws the first failure, if any. */
  void rethrow() {
    if (failure != null) {
      throw failure;
    }
  }
}
