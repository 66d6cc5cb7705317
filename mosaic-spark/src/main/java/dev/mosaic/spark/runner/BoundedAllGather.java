package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.CommException;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkException;

/**
 * The rendezvous' {@link BarrierTaskContext#allGather} round with a bound. Spark bounds a sync
 * round only by {@value #SPARK_SYNC_TIMEOUT} (365 days unless set): a peer whose executor is
 * stopped would hold every other task for that long. Two bounds apply:
 * <ul>
 *   <li>Spark's own, where it is at most {@code spark.mosaic.comm.timeout} (sessions built by
 *       {@link SparkSessions} set it so): the coordinator then answers every waiting task with a
 *       failure, which is translated here into a one-line message;
 *   <li>Mosaic's, {@code spark.mosaic.comm.timeout}, where Spark's is longer: the round runs on a
 *       helper thread and the task gives up when the bound passes. Spark offers no way to abandon
 *       a sync round, so the helper thread stays parked in it (polling once a second) until the
 *       executor ends; that is the price of sessions whose sync timeout is longer than the comm
 *       timeout.
 * </ul>
 * Where Spark's bound applies, Mosaic's is {@link #GRACE} longer: Spark's clock starts when the
 * first task reaches the coordinator, so it must fire first and leave no thread behind.
 */
final class BoundedAllGather {
  static final String SPARK_SYNC_TIMEOUT = "spark.barrier.sync.timeout";
  /** Spark's sync timeout when unset ({@code 365d}). */
  static final Duration SPARK_SYNC_DEFAULT = Duration.ofDays(365);
  static final Duration GRACE = Duration.ofSeconds(10);
  /** Start of the coordinator's message when not every task arrived in time. */
  private static final String SPARK_TIMED_OUT = "The coordinator didn't get all barrier sync";

  private BoundedAllGather() {}

  /** The round did not complete within its bound: a peer never arrived. */
  static final class TimedOut extends CommException {
    private static final long serialVersionUID = 1L;

    TimedOut(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** How long a task waits in the round: see the class comment. */
  static Duration bound(Duration commTimeout, Duration sparkSyncTimeout) {
    return sparkSyncTimeout.compareTo(commTimeout) <= 0 ? sparkSyncTimeout.plus(GRACE)
        : commTimeout;
  }

  /** {@code allGather} for {@code ctx}'s task, bounded as the class comment says. */
  static Function<String, String[]> of(BarrierTaskContext ctx, Duration commTimeout,
      Duration sparkSyncTimeout) {
    Duration bound = bound(commTimeout, sparkSyncTimeout);
    String task = "task " + ctx.partitionId() + " of " + ctx.getTaskInfos().length + " (stage "
        + ctx.stageId() + " attempt " + ctx.stageAttemptNumber() + ")";
    return message -> run(() -> ctx.allGather(message), bound, sparkSyncTimeout, task);
  }

  /**
   * Runs {@code round} on a helper thread and waits at most {@code bound}. A task killed while it
   * waits ends through Spark's own check in the round (it polls the kill flag every second).
   */
  static String[] run(java.util.concurrent.Callable<String[]> round, Duration bound,
      Duration sparkSyncTimeout, String task) {
    FutureTask<String[]> f = new FutureTask<>(round);
    Thread t = new Thread(f, "mosaic-rendezvous-" + task.replace(' ', '-'));
    t.setDaemon(true);
    t.start();
    try {
      return f.get(bound.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new TimedOut(notAllArrived(task, show(bound), MosaicConfig.COMM_TIMEOUT), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("Mosaic rendezvous: " + task + " was interrupted", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof SparkException s && String.valueOf(s.getMessage())
          .startsWith(SPARK_TIMED_OUT)) {
        throw new TimedOut(notAllArrived(task, show(sparkSyncTimeout) + " (" + SPARK_SYNC_TIMEOUT
            + ")", SPARK_SYNC_TIMEOUT + " and " + MosaicConfig.COMM_TIMEOUT), s);
      }
      if (c instanceof RuntimeException r) {
        throw r;
      }
      if (c instanceof Error err) {
        throw err;
      }
      throw new CommException("Mosaic rendezvous: " + task + " failed: " + c, c);
    }
  }

  private static String show(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
  }

  /** The one-line message of a round that timed out. */
  static String notAllArrived(String task, String waited, String settings) {
    return "Mosaic rendezvous: " + task + " waited " + waited + " in BarrierTaskContext.allGather"
        + " but not every task of the stage arrived (a task cannot see which: one is stuck"
        + " before the rendezvous, or its executor is stopped or lost); if tasks need longer to"
        + " start, raise " + settings;
  }
}
