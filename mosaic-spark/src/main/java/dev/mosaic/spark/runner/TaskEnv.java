package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.gpu.GpuBinding;
import java.util.List;

/**
 * What a task's code gets from the barrier runner: its rank among the stage's tasks, a connected
 * communicator (closed by the runner), the settings, the executor host of every rank (from
 * the barrier task infos: ranks on one host form a node), and the device the stage computes on.
 */
public record TaskEnv(int rank, int size, Communicator comm, MosaicConfig config,
    List<String> hosts, String device) {

  public TaskEnv {
    Devices.check(device);
  }

  /**
   * The attention kernel of this task on its device: the GPU the communicator was bound to (the
   * same {@link GpuBinding} decision), or the CPU with {@code threads} threads. The caller closes
   * it.
   */
  public AttentionKernel kernel(int threads) {
    return Devices.taskKernel(device, threads, Devices.taskGpuAddresses(),
        GpuBinding.localIndex(hosts, rank), config.gpuDtype());
  }

  /** The host this task runs on. */
  public String host() {
    return hosts.get(rank);
  }

  /**
   * Ranks per node, where a node is an executor host. Nodes must be equal and hold consecutive
   * ranks for the hierarchical strategies; otherwise this fails naming the hosts.
   */
  public int ranksPerHost() {
    int perHost = (int) hosts.stream().filter(h -> h.equals(hosts.get(0))).count();
    for (int r = 0; r < size; r++) {
      if (!hosts.get(r).equals(hosts.get(r - r % perHost))) {
        throw new IllegalStateException("hierarchical attention needs nodes of equal size with"
            + " consecutive ranks, but the tasks run on hosts " + hosts
            + "; set the node size explicitly (--intra-node-size) or place tasks evenly");
      }
    }
    return perHost;
  }
}
