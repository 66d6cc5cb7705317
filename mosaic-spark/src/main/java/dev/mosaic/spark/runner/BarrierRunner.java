package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.comm.Communicator;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.Function;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.rdd.RDD;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * Runs a {@link ShardFunction} as one Spark barrier stage: one task per partition, all started
 * together; each task binds its rank, meets its peers ({@link Rendezvous}, bounded by
 * {@link BoundedAllGather}), runs the function with a connected communicator — TCP, or NCCL when
 * the stage computes on GPUs ({@link Transport}) — and closes the communicator when it ends, also
 * on failure (so peers blocked on it fail at once instead of at the timeout). A failed task fails
 * the stage.
 *
 * <p>Retries: Spark retries a failed barrier stage as a whole only when it is a shuffle map stage
 * (the returned RDD feeds a shuffle), up to {@code spark.stage.maxConsecutiveAttempts}; when the
 * returned RDD goes straight into an action (a result stage) the job fails instead ("Could not
 * recover from a failed barrier ResultStage"). Only transient failures are worth a retry
 * ({@link RetryPolicy}): a task whose error would recur reports it as a
 * {@link NonRetryableTaskException}, records it in the stage's {@link FailureLog}, and
 * {@link FailFastListener} cancels the job; the tasks of a retry that starts before the cancel
 * compute nothing and wait for it.
 * {@link #collect} throws such a failure as the task's own one-line error.
 */
public final class BarrierRunner {
  private BarrierRunner() {}

  /** As {@link #run(JavaRDD, ShardFunction, MosaicConfig, String, Class)} on the configured device. */
  public static <I, O> JavaRDD<O> run(JavaRDD<I> shards, ShardFunction<I, O> fn,
      MosaicConfig config, Class<O> outType) {
    return run(shards, fn, config, config.device(), outType);
  }

  /**
   * @param shards one partition per rank, already holding that rank's records
   * @param device where the tasks compute (cpu, gpu, auto): {@link TaskEnv#kernel} and the
   *     communicator follow it
   * @return the tasks' output records, partition r from rank r
   */
  public static <I, O> JavaRDD<O> run(JavaRDD<I> shards, ShardFunction<I, O> fn,
      MosaicConfig config, String device, Class<O> outType) {
    return start(shards, fn, config, device, outType).output();
  }

  /**
   * Runs the stage and returns its output records, rank by rank. Spark does not retry a barrier
   * stage collected this way; a task failure that a retry would repeat is thrown as the task's own
   * error ({@link TaskFailure#toDriverException}), any other failure as Spark's exception.
   */
  public static <I, O> List<O> collect(JavaRDD<I> shards, ShardFunction<I, O> fn,
      MosaicConfig config, String device, Class<O> outType) {
    Started<O> stage = start(shards, fn, config, device, outType);
    try {
      return stage.output().collect();
    } catch (Exception e) { // Scala throws SparkException without declaring it
      List<TaskFailure> failures = stage.failures().all();
      if (!failures.isEmpty()) {
        throw failures.get(0).toDriverException(e);
      }
      throw e;
    }
  }

  /** The stage's output and what its tasks report when they fail for good. */
  private record Started<O>(JavaRDD<O> output, FailureLog failures) {}

  private static <I, O> Started<O> start(JavaRDD<I> shards, ShardFunction<I, O> fn,
      MosaicConfig config, String device, Class<O> outType) {
    SparkContext sc = shards.context();
    Transport transport = Transport.choose(config.commBackend(), device, sc.getConf());
    Transport.checkWireDtype(transport, config.wireDtype());
    checkLocalGpu(device, sc.master());
    byte[] secret = new byte[32];
    new SecureRandom().nextBytes(secret);
    Duration syncTimeout = Duration.ofSeconds(sc.getConf().getTimeAsSeconds(
        BoundedAllGather.SPARK_SYNC_TIMEOUT, BoundedAllGather.SPARK_SYNC_DEFAULT.toSeconds() + "s"));
    FailureLog failures = FailureLog.register(sc);
    FailFastListener.installOn(sc);
    ClassTag<O> tag = ClassTag$.MODULE$.apply(outType);
    RDD<O> out = shards.rdd().barrier().mapPartitions(
        new Task<>(fn, config, device, transport, secret, syncTimeout, failures), false, tag);
    out.setName("Mosaic barrier stage, " + shards.getNumPartitions() + " tasks, "
        + transport.name().toLowerCase(java.util.Locale.ROOT)); // Spark UI
    return new Started<>(out.toJavaRDD(), failures);
  }

  /**
   * Where the tasks run on this machine ({@code local}, {@code local-cluster}), a GPU the driver
   * cannot use is one the tasks cannot use either: say so now, rather than after Spark has retried
   * the stage. On a cluster the executors may have GPUs the driver lacks, so nothing is checked.
   */
  static void checkLocalGpu(String device, String master) {
    if (device.equals(dev.mosaic.spark.gpu.Devices.GPU) && master.startsWith("local")
        && !dev.mosaic.kernels.gpu.Gpu.available()) {
      throw new IllegalArgumentException("device gpu: no usable GPU on this machine ("
          + master + "): " + dev.mosaic.kernels.gpu.Gpu.unavailableReason());
    }
  }

  /**
   * The closure shipped to executors. The job secret travels in it: whoever can read task
   * closures (Spark RPC without encryption) can read the secret (docs/deploy.md, "Security
   * model").
   */
  private static final class Task<I, O>
      extends AbstractFunction1<scala.collection.Iterator<I>, scala.collection.Iterator<O>>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final ShardFunction<I, O> fn;
    private final MosaicConfig config;
    private final String device;
    private final Transport transport;
    private final byte[] secret;
    private final Duration syncTimeout;
    private final FailureLog failures;
    /** In a task: the failures the driver knew of when it shipped this closure. */
    private transient List<TaskFailure> known = List.of();

    Task(ShardFunction<I, O> fn, MosaicConfig config, String device, Transport transport,
        byte[] secret, Duration syncTimeout, FailureLog failures) {
      this.fn = fn;
      this.config = config;
      this.device = device;
      this.transport = transport;
      this.secret = secret;
      this.syncTimeout = syncTimeout;
      this.failures = failures;
    }

    @Override
    public scala.collection.Iterator<O> apply(scala.collection.Iterator<I> records) {
      BarrierTaskContext ctx = BarrierTaskContext.get();
      int rank = ctx.partitionId();
      int size = ctx.getTaskInfos().length;
      for (TaskFailure f : known) {
        if (f.stageId() == ctx.stageId()) {
          // Spark retries a stage whose failure would recur, before the driver's listener has
          // cancelled the job: compute nothing, and let the cancel end this attempt (failing it
          // would only start the next one).
          awaitKill(ctx, config.commTimeout());
          throw new NonRetryableTaskException(f, null);
        }
      }
      Function<String, String[]> allGather =
          BoundedAllGather.of(ctx, config.commTimeout(), syncTimeout);
      try (Communicator comm = transport == Transport.NCCL
          ? NcclTaskConnect.connect(ctx, allGather, config)
          : Rendezvous.connect(ctx, allGather, secret, config)) {
        TaskEnv env = new TaskEnv(rank, size, comm, config, Rendezvous.hosts(ctx), device);
        // Materialise inside the try: the communicator must outlive the computation.
        List<O> out = new ArrayList<>();
        Iterator<O> it = fn.apply(env, CollectionConverters.asJava(records));
        it.forEachRemaining(out::add);
        return CollectionConverters.asScala(out.iterator());
      } catch (RuntimeException e) {
        awaitKillIfSecondary(ctx, e);
        throw classify(ctx, e);
      } catch (Exception e) {
        awaitKillIfSecondary(ctx, e);
        throw classify(ctx,
            new IllegalStateException("Mosaic task " + rank + " of " + size + " failed: " + e, e));
      }
    }

    /**
     * A failure that a retry would repeat becomes a {@link NonRetryableTaskException}, recorded
     * for the driver; a transient one, or any failure of a task Spark killed (it reports the kill,
     * not the error), goes to Spark unchanged.
     */
    private RuntimeException classify(BarrierTaskContext ctx, RuntimeException e) {
      if (ctx.isInterrupted() || RetryPolicy.retryable(e)) {
        return e;
      }
      TaskFailure f = TaskFailure.of(ctx, e);
      failures.add(f);
      return new NonRetryableTaskException(f, e);
    }

    /** Runs on the driver, each time Spark ships the stage (once per attempt). */
    private void writeObject(ObjectOutputStream out) throws IOException {
      out.defaultWriteObject();
      out.writeObject(new ArrayList<>(failures.all()));
    }

    @SuppressWarnings("unchecked")
    private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
      in.defaultReadObject();
      known = (List<TaskFailure>) in.readObject();
    }
  }

  /**
   * How long a task whose communicator failed waits, after closing it, for Spark to kill it.
   * Spark reports a barrier stage's failure with the first failed task it hears of; the peers of a
   * failing task see its sockets close within milliseconds, and without this wait their "closed
   * the connection" errors often reach the driver first, so the job's error named a bystander
   * instead of the root cause. Killed tasks are reported as killed, not failed.
   */
  static final long SECONDARY_FAILURE_GRACE_MS = 2_000;

  /** Waits until Spark kills the task, at most {@code bound}. */
  private static void awaitKill(BarrierTaskContext ctx, Duration bound) {
    long deadline = System.nanoTime() + bound.toNanos();
    while (!ctx.isInterrupted() && System.nanoTime() < deadline) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /**
   * If {@code e} comes from the communicator (the peer that failed first is then usually someone
   * else), waits until the task is killed or the grace period ends. The communicator is already
   * closed here, so the peers' cascade is not delayed; only the report of this task is.
   */
  private static void awaitKillIfSecondary(BarrierTaskContext ctx, Throwable e) {
    boolean comm = false;
    Throwable t = e;
    for (int depth = 0; t != null && !comm && depth < 16; depth++, t = t.getCause()) {
      comm = t instanceof CommException;
    }
    long deadline = System.nanoTime() + SECONDARY_FAILURE_GRACE_MS * 1_000_000;
    while (comm && !ctx.isInterrupted() && System.nanoTime() < deadline) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
