package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.gpu.GpuBinding;
import dev.mosaic.spark.gpu.NcclRendezvous;
import java.util.List;
import java.util.function.Function;
import org.apache.spark.BarrierTaskContext;

/**
 * The NCCL side of a barrier task's rendezvous, in a class of its own so that a CPU task never
 * loads it (nor, through it, the CUDA classes). Binds the GPU with the same {@link GpuBinding}
 * decision the task's kernel makes, then meets its peers in one {@code allGather} round: rank 0's
 * NCCL unique id travels base64-encoded, every task's GPU is checked against the others', and a
 * task that cannot take part says why in the same round, so its peers fail with the reason
 * instead of waiting.
 */
final class NcclTaskConnect {
  private NcclTaskConnect() {}

  /**
   * @param allGather the stage's one sync round, bounded ({@link BoundedAllGather})
   */
  static Communicator connect(BarrierTaskContext ctx, Function<String, String[]> allGather,
      MosaicConfig config) {
    int rank = ctx.partitionId();
    List<String> hosts = Rendezvous.hosts(ctx);
    String task = "stage " + ctx.stageId() + " partition " + rank + " attempt "
        + ctx.attemptNumber();
    try {
      return NcclRendezvous.connect(rank, hosts.size(), hosts.get(rank), task,
          () -> GpuBinding.resolve(System.getenv(), Devices.taskGpuAddresses(),
              GpuBinding.localIndex(hosts, rank)),
          allGather, null, config.commTimeout());
    } catch (IllegalStateException e) {
      throw new IllegalStateException(e.getMessage() + " (to run this stage over TCP instead,"
          + " set " + MosaicConfig.COMM_BACKEND + "=tcp)", e);
    }
  }
}
