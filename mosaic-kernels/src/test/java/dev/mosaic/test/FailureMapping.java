package dev.mosaic.test;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.LifecycleMethodExecutionExceptionHandler;
import org.junit.jupiter.api.extension.TestExecutionExceptionHandler;

/**
 * A JUnit extension that rewrites whatever a test or any of its lifecycle methods throws, in one
 * place: JUnit asks for the same handling through five separate callbacks.
 */
abstract class FailureMapping
    implements TestExecutionExceptionHandler, LifecycleMethodExecutionExceptionHandler {

  /** What to throw instead of {@code t} (or {@code t} itself). */
  abstract Throwable map(Throwable t);

  @Override
  public void handleTestExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw map(t);
  }

  @Override
  public void handleBeforeAllMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw map(t);
  }

  @Override
  public void handleBeforeEachMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw map(t);
  }

  @Override
  public void handleAfterEachMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw map(t);
  }

  @Override
  public void handleAfterAllMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw map(t);
  }
}
