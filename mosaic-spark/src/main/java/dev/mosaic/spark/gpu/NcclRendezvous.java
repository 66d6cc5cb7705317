package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.kernels.gpu.Gpu;
import java.time.Duration;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Starts an {@link NcclCommunicator} for one barrier task in a single sync round (see
 * {@link NcclBootstrap}). This class touches no CUDA class itself: it checks
 * {@link Gpu#available()} and NCCL first, so a task without them fails with the reason — after
 * telling its peers, who fail too instead of waiting.
 *
 * <p>From a Spark barrier task: <pre>{@code
 * BarrierTaskContext ctx = BarrierTaskContext.get();
 * List<String> hosts = ...; // host of each task, from ctx.getTaskInfos()
 * NcclCommunicator comm = NcclRendezvous.connect(ctx.partitionId(), hosts.size(),
 *     hosts.get(ctx.partitionId()), "partition " + ctx.partitionId() + " attempt " + ctx.attemptNumber(),
 *     () -> GpuBinding.resolve(System.getenv(), gpuAddresses(ctx),
 *         GpuBinding.localIndex(hosts, ctx.partitionId())),
 *     ctx::allGather, TaskDeviceMemory.forCurrentTask(...), config.timeout());
 * }</pre>
 */
public final class NcclRendezvous {
  private NcclRendezvous() {}

  /**
   * @param bind picks this task's GPU (usually {@link GpuBinding#resolve})
   * @param allGather the barrier's all-gather ({@code BarrierTaskContext::allGather})
   * @param arena device memory for the communicator's buffers (e.g. the task's); null: its own
   */
  public static NcclCommunicator connect(int rank, int size, String host, String task,
      Supplier<GpuBinding.Binding> bind, Function<String, String[]> allGather, DeviceArena arena,
      Duration timeout) {
    GpuBinding.Binding binding = null;
    String id = "";
    String error = "";
    try {
      binding = bind.get();
      Gpu.Report gpu = Gpu.report();
      if (!gpu.usable()) {
        throw new IllegalStateException("no usable GPU: " + gpu.reason());
      }
      if (!gpu.nccl().ok()) {
        throw new IllegalStateException("NCCL is not usable: " + gpu.nccl().detail());
      }
      if (binding.ordinal() >= gpu.devices().size()) {
        throw new IllegalStateException("bound to CUDA device " + binding.ordinal() + " ("
            + binding.source() + ") but this process sees " + gpu.devices().size() + " GPU(s)");
      }
      if (rank == 0) {
        id = NcclIds.encode(NcclCommunicator.uniqueId());
      }
    } catch (RuntimeException | LinkageError e) {
      error = e.getMessage() == null ? e.toString() : e.getMessage();
    }
    String[] all = allGather.apply(NcclBootstrap.encode(new NcclBootstrap.Hello(rank, host,
        binding == null ? "?" : binding.gpuId(), task, id, error)));
    NcclBootstrap.Plan plan = NcclBootstrap.plan(all, size); // throws before NCCL starts
    return NcclCommunicator.start(rank, size, binding.ordinal(), plan.ncclId(), arena, timeout);
  }
}
