package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Cancellation;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.gpu.CudaFlashAttention;
import dev.mosaic.kernels.gpu.GpuDtype;
import java.util.List;
import java.util.Map;

/**
 * Which device computes the attention blocks: {@code cpu}, {@code gpu}, or {@code auto} — the
 * GPU where Spark assigned one to the task (outside a task: where {@code CUDA_VISIBLE_DEVICES}
 * names one), else the CPU without touching any CUDA class, so the CPU path never loads them. The
 * GPU kernel takes and returns host arrays, so every strategy and the TCP communicator work with
 * it unchanged; only the kernel differs. Asking for {@code gpu} where none is usable is an error that
 * says why. A kernel built inside a Spark task stops between tiles once the task is killed
 * ({@link #taskCancellation}).
 */
public final class Devices {
  private static final System.Logger LOG = System.getLogger(Devices.class.getName());
  public static final String CPU = "cpu";
  public static final String GPU = "gpu";
  public static final String AUTO = "auto";
  public static final List<String> ALL = List.of(CPU, GPU, AUTO);

  private Devices() {}

  public static String check(String device) {
    if (device == null || !ALL.contains(device)) {
      throw new IllegalArgumentException("unknown device '" + device + "'; expected one of "
          + String.join(", ", ALL));
    }
    return device;
  }

  /** The kernel for this JVM (a driver or a local run): GPU 0 when a GPU is used, fp32. */
  public static AttentionKernel kernel(String device, int threads) {
    return kernel(device, threads, GpuDtype.FP32);
  }

  /** As {@link #kernel(String, int)}, storing inputs on the GPU as {@code dtype}. */
  public static AttentionKernel kernel(String device, int threads, GpuDtype dtype) {
    String visible = System.getenv(GpuBinding.VISIBLE_DEVICES);
    boolean assigned = visible != null && !visible.isBlank() && !visible.trim().equals("-1");
    return kernel(device, threads, assigned, () -> 0, dtype);
  }

  /**
   * The kernel for a Spark task: the GPU from {@code CUDA_VISIBLE_DEVICES} or the task's
   * {@code gpu} resources ({@link GpuBinding}).
   */
  public static AttentionKernel taskKernel(String device, int threads, List<String> gpuAddresses,
      int localIndex, GpuDtype dtype) {
    return kernel(device, threads, !gpuAddresses.isEmpty(),
        () -> GpuBinding.resolve(System.getenv(), gpuAddresses, localIndex).ordinal(), dtype);
  }

  private static AttentionKernel kernel(String device, int threads, boolean gpuAssigned,
      java.util.function.IntSupplier ordinal, GpuDtype dtype) {
    check(device);
    boolean gpu = device.equals(GPU)
        || (device.equals(AUTO) && gpuAssigned && CudaFlashAttention.available());
    if (!gpu) {
      if (device.equals(AUTO) && gpuAssigned) {
        LOG.log(System.Logger.Level.WARNING, "a GPU is assigned but not usable, computing on the"
            + " CPU (device auto): " + CudaFlashAttention.unavailableReason());
      }
      return cancellable(new CpuFlashAttention(threads));
    }
    if (!CudaFlashAttention.available()) {
      throw new IllegalArgumentException(
          "device gpu: no usable GPU here: " + CudaFlashAttention.unavailableReason());
    }
    CudaFlashAttention kernel = CudaFlashAttention.open(ordinal.getAsInt(), dtype);
    TaskDeviceMemory.closeAtTaskEnd(kernel.ownDeviceMemory()); // task-scoped, also on failure
    return cancellable(kernel);
  }

  /** The kernel, asking the Spark task that builds it (if any) whether it was killed. */
  private static AttentionKernel cancellable(AttentionKernel kernel) {
    kernel.cancelWith(taskCancellation());
    return kernel;
  }

  /**
   * Whether the Spark task this thread runs was killed (its stage failed, its job was
   * cancelled): a volatile read of the task's kill flag, so a kernel may ask it between tiles.
   * Spark kills barrier tasks without interrupting their threads; without this a killed task
   * computes on until its next communicator wait. Outside a task it never asks to stop.
   */
  public static Cancellation taskCancellation() {
    org.apache.spark.TaskContext ctx = org.apache.spark.TaskContext.get();
    if (ctx == null) {
      return Cancellation.NEVER;
    }
    String reason = "Spark killed task " + ctx.taskAttemptId() + " (stage " + ctx.stageId()
        + " attempt " + ctx.stageAttemptNumber() + ", partition " + ctx.partitionId() + ")";
    return () -> ctx.isInterrupted() ? reason : null;
  }

  /** The Spark task's GPU addresses, empty when it was assigned none. */
  public static List<String> taskGpuAddresses() {
    org.apache.spark.TaskContext ctx = org.apache.spark.TaskContext.get();
    if (ctx == null) {
      return List.of();
    }
    Map<String, org.apache.spark.resource.ResourceInformation> res = ctx.resourcesJMap();
    org.apache.spark.resource.ResourceInformation gpu = res.get("gpu");
    return gpu == null ? List.of() : List.of(gpu.addresses());
  }
}
