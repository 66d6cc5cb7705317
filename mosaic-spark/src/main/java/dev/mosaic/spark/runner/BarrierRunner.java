package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.comm.Communicator;
import java.io.Serializable;
import java.security.SecureRandom;
import java.util.Iterator;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.rdd.RDD;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * Runs a {@link ShardFunction} as one Spark barrier stage: one task per partition, all started
 * together; each task binds its rank, meets its peers ({@link Rendezvous}), runs the function
 * with a connected communicator — TCP, or NCCL when the stage computes on GPUs ({@link Transport})
 * — and closes the communicator when it ends, also on failure (so
 * peers blocked on it fail at once instead of at the timeout). A failed task fails the stage.
 * Spark retries a failed barrier stage as a whole only when it is a shuffle map stage (the
 * returned RDD feeds a shuffle), up to {@code spark.stage.maxConsecutiveAttempts}; when the
 * returned RDD goes straight into an action (a result stage) the job fails instead ("Could not
 * recover from a failed barrier ResultStage").
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
    Transport transport = Transport.choose(config.commBackend(), device, shards.context().getConf());
    checkLocalGpu(device, shards.context().master());
    byte[] secret = new byte[32];
    new SecureRandom().nextBytes(secret);
    ClassTag<O> tag = ClassTag$.MODULE$.apply(outType);
    RDD<O> out = shards.rdd().barrier().mapPartitions(
        new Task<>(fn, config, device, transport, secret), false, tag);
    out.setName("Mosaic barrier stage, " + shards.getNumPartitions() + " tasks, "
        + transport.name().toLowerCase(java.util.Locale.ROOT)); // Spark UI
    return out.toJavaRDD();
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

  /** The closure shipped to executors; the secret travels in it, never over the wire in clear. */
  private static final class Task<I, O>
      extends AbstractFunction1<scala.collection.Iterator<I>, scala.collection.Iterator<O>>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final ShardFunction<I, O> fn;
    private final MosaicConfig config;
    private final String device;
    private final Transport transport;
    private final byte[] secret;

    Task(ShardFunction<I, O> fn, MosaicConfig config, String device, Transport transport,
        byte[] secret) {
      this.fn = fn;
      this.config = config;
      this.device = device;
      this.transport = transport;
      this.secret = secret;
    }

    @Override
    public scala.collection.Iterator<O> apply(scala.collection.Iterator<I> records) {
      BarrierTaskContext ctx = BarrierTaskContext.get();
      int rank = ctx.partitionId();
      int size = ctx.getTaskInfos().length;
      try (Communicator comm = transport == Transport.NCCL ? NcclTaskConnect.connect(ctx, config)
          : Rendezvous.connect(ctx, secret, config)) {
        TaskEnv env = new TaskEnv(rank, size, comm, config, Rendezvous.hosts(ctx), device);
        // Materialise inside the try: the communicator must outlive the computation.
        java.util.List<O> out = new java.util.ArrayList<>();
        Iterator<O> it = fn.apply(env, CollectionConverters.asJava(records));
        it.forEachRemaining(out::add);
        return CollectionConverters.asScala(out.iterator());
      } catch (RuntimeException e) {
        awaitKillIfSecondary(ctx, e);
        throw e;
      } catch (Exception e) {
        awaitKillIfSecondary(ctx, e);
        throw new IllegalStateException("Mosaic task " + rank + " of " + size + " failed: " + e, e);
      }
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
