package dev.mosaic.spark.gpu;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which GPU a Mosaic task uses — pure logic over what the task can see, so it is tested with fake
 * maps and lists:
 * <ol>
 *   <li>{@code CUDA_VISIBLE_DEVICES} set (YARN/Kubernetes isolation, or the user): the process
 *       sees only those GPUs, numbered 0..n−1. A Spark-assigned address that appears in the list
 *       picks its position; one visible GPU is used as ordinal 0; several and no assignment pick
 *       by the task's index among the Mosaic tasks on its host.</li>
 *   <li>Otherwise the task's Spark resources ({@code TaskContext.resources().get("gpu")}, from
 *       {@code spark.task.resource.gpu.amount} and the discovery script): the first address is the
 *       CUDA ordinal (set {@code CUDA_DEVICE_ORDER=PCI_BUS_ID} so CUDA numbers GPUs as nvidia-smi
 *       does; the conf/gpu templates do).</li>
 *   <li>Neither: an error saying what to configure.</li>
 * </ol>
 * Before NCCL starts, {@link #checkDistinct} refuses two ranks on one GPU of one host, naming both
 * tasks (NCCL would fail later with a less helpful "duplicate GPU" error, or hang).
 */
public final class GpuBinding {
  public static final String VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES";

  private GpuBinding() {}

  /**
   * The decision for one task.
   *
   * @param ordinal the CUDA device index inside this process
   * @param gpuId what identifies the GPU on its host (a CUDA_VISIBLE_DEVICES entry or a Spark
   *     address), compared across tasks by {@link #checkDistinct}
   * @param source how it was chosen, for logs and errors
   */
  public record Binding(int ordinal, String gpuId, String source) {}

  /** One rank's claim, as gathered from every task of the stage. */
  public record TaskGpu(int rank, String task, String host, String gpuId) {}

  /**
   * @param env the task's environment ({@code System.getenv()})
   * @param addresses the task's Spark "gpu" resource addresses, empty when none were assigned
   * @param localIndex this task's index among the Mosaic tasks on its host (see
   *     {@link #localIndex}), used only when several GPUs are visible and none was assigned
   */
  public static Binding resolve(Map<String, String> env, List<String> addresses, int localIndex) {
    String visibleVar = env.get(VISIBLE_DEVICES);
    List<String> assigned = clean(addresses);
    if (visibleVar != null) {
      List<String> visible = clean(List.of(visibleVar.split(",")));
      if (visible.isEmpty() || visible.get(0).equals("-1")) {
        throw new IllegalStateException(VISIBLE_DEVICES + "='" + visibleVar
            + "' hides every GPU from this task");
      }
      if (!assigned.isEmpty()) {
        int at = visible.indexOf(assigned.get(0));
        if (at >= 0) {
          return new Binding(at, assigned.get(0), "Spark assigned GPU " + assigned.get(0)
              + ", position " + at + " in " + VISIBLE_DEVICES + "=" + visibleVar);
        }
        if (visible.size() == 1) {
          return new Binding(0, visible.get(0), VISIBLE_DEVICES + "=" + visibleVar
              + " (the only GPU this container sees; Spark address " + assigned.get(0) + ")");
        }
        throw new IllegalStateException("Spark assigned GPU " + assigned.get(0)
            + " to this task but " + VISIBLE_DEVICES + "=" + visibleVar + " does not list it");
      }
      if (visible.size() == 1) {
        return new Binding(0, visible.get(0), VISIBLE_DEVICES + "=" + visibleVar);
      }
      if (localIndex < 0 || localIndex >= visible.size()) {
        throw new IllegalStateException("task " + localIndex + " on this host has no GPU: "
            + VISIBLE_DEVICES + "=" + visibleVar + " lists " + visible.size() + " and Spark"
            + " assigned none (set spark.task.resource.gpu.amount=1, see conf/gpu/)");
      }
      return new Binding(localIndex, visible.get(localIndex), VISIBLE_DEVICES + "=" + visibleVar
          + ", task index " + localIndex + " on this host");
    }
    if (!assigned.isEmpty()) {
      String a = assigned.get(0);
      int ordinal;
      try {
        ordinal = Integer.parseInt(a);
      } catch (NumberFormatException e) {
        throw new IllegalStateException("Spark assigned GPU address '" + a + "', which is not a"
            + " device index: use a discovery script that prints nvidia-smi indices"
            + " (conf/gpu/getGpusResources.sh) or set " + VISIBLE_DEVICES, e);
      }
      if (ordinal < 0) {
        throw new IllegalStateException("Spark assigned GPU address " + a);
      }
      return new Binding(ordinal, a, "Spark resources(\"gpu\") = " + assigned
          + (assigned.size() > 1 ? " (using the first)" : ""));
    }
    throw new IllegalStateException("this task has no GPU: Spark assigned none (set"
        + " spark.executor.resource.gpu.amount, spark.task.resource.gpu.amount=1 and a discovery"
        + " script, see conf/gpu/) and " + VISIBLE_DEVICES + " is not set");
  }

  /** The number of ranks before {@code rank} that run on the same host. */
  public static int localIndex(List<String> hosts, int rank) {
    int n = 0;
    for (int r = 0; r < rank; r++) {
      if (hosts.get(r).equals(hosts.get(rank))) {
        n++;
      }
    }
    return n;
  }

  /**
   * Throws {@link IllegalStateException} when two ranks claim the same GPU on the same host,
   * naming both tasks and the settings that fix it.
   */
  public static void checkDistinct(List<TaskGpu> tasks) {
    Map<String, TaskGpu> owner = new LinkedHashMap<>();
    List<String> clashes = new ArrayList<>();
    for (TaskGpu t : tasks) {
      TaskGpu first = owner.putIfAbsent(t.host() + "\u0000" + t.gpuId(), t);
      if (first != null) {
        clashes.add("rank " + first.rank() + " (" + first.task() + ") and rank " + t.rank() + " ("
            + t.task() + ") are both bound to GPU " + t.gpuId() + " on host " + t.host());
      }
    }
    if (!clashes.isEmpty()) {
      throw new IllegalStateException(String.join("; ", clashes) + ". NCCL needs one GPU per"
          + " rank: give each task its own GPU (spark.task.resource.gpu.amount=1 with"
          + " spark.executor.resource.gpu.amount and a discovery script, see conf/gpu/), or run"
          + " fewer Mosaic tasks per executor");
    }
  }

  private static List<String> clean(List<String> xs) {
    List<String> out = new ArrayList<>();
    if (xs != null) {
      for (String x : xs) {
        if (x != null && !x.isBlank()) {
          out.add(x.strip());
        }
      }
    }
    return out;
  }
}
