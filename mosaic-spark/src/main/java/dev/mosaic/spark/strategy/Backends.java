package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.spark.comm.Communicator;
import java.util.List;

/** Backend names users type, and the strategies they build. */
public final class Backends {
  public static final String LOCAL = "local";
  public static final String RING = "ring";
  public static final String MESH2D = "mesh2d";
  public static final String ULYSSES = "ulysses";
  public static final String COMPOSED = "composed";
  public static final String HIERARCHICAL = "hierarchical";
  /** Resolved on the driver by the planner to one of the others. */
  public static final String AUTO = "auto";
  /** Every backend name this build knows. */
  public static final List<String> ALL =
      List.of(LOCAL, RING, MESH2D, ULYSSES, COMPOSED, HIERARCHICAL, AUTO);

  private Backends() {}

  /** Checks a backend name, with an error listing the valid ones. */
  public static String check(String backend) {
    if (backend == null || !ALL.contains(backend)) {
      throw new IllegalArgumentException(
          "unknown backend '" + backend + "'; expected one of " + String.join(", ", ALL));
    }
    return backend;
  }

  /**
   * A strategy that runs in this JVM alone. Distributed backends need a communicator and are built
   * by the Spark runner for each task.
   */
  public static Strategy standalone(String backend, int threads) {
    return standalone(backend, threads, dev.mosaic.spark.gpu.Devices.CPU);
  }

  /** As {@link #standalone(String, int)}, on {@code device} (cpu, gpu or auto). */
  public static Strategy standalone(String backend, int threads, String device) {
    return standalone(backend, threads, device, dev.mosaic.kernels.gpu.GpuDtype.FP32);
  }

  /** As {@link #standalone(String, int, String)}, storing inputs on a GPU as {@code gpuDtype}. */
  public static Strategy standalone(String backend, int threads, String device,
      dev.mosaic.kernels.gpu.GpuDtype gpuDtype) {
    check(backend);
    if (!backend.equals(LOCAL)) {
      throw new IllegalArgumentException("backend '" + backend
          + "' shards the sequence over Spark tasks: run it through the Spark runner"
          + " (CLI: --sp P), or use backend 'local' in a single JVM");
    }
    return new LocalStrategy(dev.mosaic.spark.gpu.Devices.kernel(device, threads, gpuDtype), true);
  }

  /**
   * The strategy of one task of a distributed run. Collective for the strategies that split the
   * communicator: every rank must call it at the same point.
   *
   * @param hostNodeSize ranks per executor host, used when the spec leaves the node size open
   */
  public static Strategy distributed(StrategySpec spec, Communicator comm, ShardLayout layout,
      AttentionKernel kernel, int hostNodeSize) {
    int p = comm.size();
    return switch (spec.backend()) {
      case LOCAL -> new LocalStrategy(kernel, false);
      case RING -> new RingStrategy(comm, layout, kernel);
      case ULYSSES -> new UlyssesStrategy(comm, layout, kernel);
      case MESH2D -> {
        int[] grid = spec.meshRows() > 0 ? new int[] {spec.meshRows(), spec.meshCols()}
            : Mesh2dStrategy.squarestGrid(p);
        yield new Mesh2dStrategy(comm, layout, grid[0], grid[1], kernel);
      }
      case COMPOSED -> new ComposedStrategy(comm, layout, spec.meshRows(), spec.inter(), kernel);
      case HIERARCHICAL -> {
        int intra = spec.intraNodeSize() > 0 ? spec.intraNodeSize() : hostNodeSize;
        yield spec.intra().equals(ULYSSES)
            ? new ComposedStrategy(comm, layout, intra, spec.inter(), kernel)
            : new HierarchicalRingStrategy(comm, layout, intra, kernel);
      }
      default -> throw new IllegalArgumentException(
          "backend '" + spec.backend() + "' must be resolved before tasks start");
    };
  }
}
