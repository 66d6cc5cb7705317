package dev.mosaic.spark.gpu;

import dev.mosaic.spark.comm.CommException;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs a native call that may block forever (NCCL's blocking {@code ncclCommInitRank} waits for
 * every rank, with no timeout of its own) on a daemon thread, and gives up after a timeout: the
 * task then fails with a message instead of hanging. The abandoned thread stays blocked in the
 * native call until the process ends or the peers arrive; that is the price of a bounded wait on a
 * call that cannot be interrupted.
 */
final class BoundedCall {
  private BoundedCall() {}

  /** The call did not return in time; it may still be running on its thread. */
  static final class TimedOut extends CommException {
    private static final long serialVersionUID = 1L;

    TimedOut(String message, Throwable cause) {
      super(message, cause);
    }
  }

  static <T> T run(Callable<T> call, Duration timeout, String what, String hint) {
    FutureTask<T> task = new FutureTask<>(call);
    Thread t = new Thread(task, "mosaic-bounded-" + what);
    t.setDaemon(true);
    t.start();
    try {
      return task.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new TimedOut(what + " did not finish within " + timeout.toMillis() + " ms: "
          + hint, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException(what + " was interrupted", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof RuntimeException r) {
        throw r;
      }
      if (c instanceof Error err) {
        throw err;
      }
      throw new CommException(what + " failed: " + c, c);
    }
  }
}
