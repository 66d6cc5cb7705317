package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.CpuFlashAttention;
import java.util.List;

/** Backend names users type, and the strategies that run without a communicator. */
public final class Backends {
  public static final String LOCAL = "local";
  public static final String RING = "ring";
  /** Every backend name this build knows. */
  public static final List<String> ALL = List.of(LOCAL, RING);

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
    check(backend);
    if (!backend.equals(LOCAL)) {
      throw new IllegalArgumentException("backend '" + backend
          + "' shards the sequence over Spark tasks: run it through the Spark runner"
          + " (CLI: --sp P), or use backend 'local' in a single JVM");
    }
    return new LocalStrategy(new CpuFlashAttention(threads), true);
  }
}
