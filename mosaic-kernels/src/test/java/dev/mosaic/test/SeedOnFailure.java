package dev.mosaic.test;

import org.opentest4j.TestAbortedException;

/**
 * Adds this run's {@link TestSeed} to every failing test (as a suppressed note under the failure,
 * printed with its stack trace), so that whoever reads the failure can replay it. Registered for
 * every test class through {@code META-INF/services} (JUnit's extension auto-detection).
 */
public final class SeedOnFailure extends FailureMapping {

  /** The note itself: a message only, no stack trace of its own. */
  static final class ReplayNote extends Throwable {
    private static final long serialVersionUID = 1L;

    ReplayNote() {
      super(TestSeed.replayHint(), null, false, false);
    }
  }

  static Throwable withSeed(Throwable failure) {
    if (failure instanceof TestAbortedException) {
      return failure; // a skip, not a failure
    }
    for (Throwable s : failure.getSuppressed()) {
      if (s instanceof ReplayNote) {
        return failure;
      }
    }
    failure.addSuppressed(new ReplayNote());
    return failure;
  }

  @Override
  Throwable map(Throwable t) {
    return withSeed(t);
  }
}
