package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.gpu.GpuBinding;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkEnv;

/**
 * One barrier stage that reports, for each task, what a Mosaic job would use there: its host and
 * executor, the GPUs Spark assigned it, the GPU it binds, the kernel it builds, and the
 * communicator it connects — then proves the communicator with one all-gather. What
 * {@code mosaic doctor --sp N} prints, so a user checks a cluster's GPU scheduling in one command
 * before running a job. A stage that cannot start (NCCL without a usable GPU, two ranks on one
 * GPU) fails with the reason of every task.
 */
public final class ClusterProbe {
  private ClusterProbe() {}

  /** What one task found. {@code binding} and {@code kernel} say why when they failed. */
  public record TaskReport(int rank, String host, String executor, List<String> sparkGpus,
      String binding, String kernel, String communicator, String allGather)
      implements Serializable {}

  public static List<TaskReport> run(MosaicContext ctx, String device) {
    int p = ctx.spSize();
    List<Integer> ranks = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      ranks.add(r);
    }
    ShardFunction<Integer, TaskReport> fn = (env, in) -> List.of(probe(env)).iterator();
    return BarrierRunner.collect(ctx.jsc().parallelize(ranks, p), fn, ctx.config(), device,
        TaskReport.class);
  }

  private static TaskReport probe(TaskEnv env) {
    List<String> gpus = Devices.taskGpuAddresses();
    String binding = env.device().equals(Devices.CPU) ? "not used (device cpu)"
        : bindingOf(env, gpus);
    String kernel;
    try (AttentionKernel k = env.kernel(1)) {
      kernel = k.getClass().getSimpleName();
    } catch (RuntimeException e) {
      kernel = "fails: " + e.getMessage();
    }
    float[][] all = env.comm().allGather(new float[] {env.rank()});
    StringBuilder gathered = new StringBuilder();
    boolean ok = all.length == env.size();
    for (int r = 0; r < all.length; r++) {
      ok &= all[r].length == 1 && all[r][0] == r;
    }
    gathered.append(ok ? "ok (" + all.length + " ranks)" : "WRONG: got " + describe(all));
    SparkEnv spark = SparkEnv.get();
    return new TaskReport(env.rank(), env.host(), spark == null ? "?" : spark.executorId(), gpus,
        binding, kernel, env.comm().getClass().getSimpleName(), gathered.toString());
  }

  private static String bindingOf(TaskEnv env, List<String> gpus) {
    try {
      GpuBinding.Binding b = GpuBinding.resolve(System.getenv(), gpus,
          GpuBinding.localIndex(env.hosts(), env.rank()));
      return "CUDA device " + b.ordinal() + " (" + b.source() + ")";
    } catch (IllegalStateException e) {
      return "none: " + e.getMessage();
    }
  }

  private static String describe(float[][] all) {
    List<String> parts = new ArrayList<>();
    for (float[] a : all) {
      parts.add(java.util.Arrays.toString(a));
    }
    return parts.toString();
  }
}
