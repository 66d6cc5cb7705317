package dev.mosaic.kernels.bench;

/**
 * Another implementation of attention timed beside Mosaic's kernel by {@link KernelComparison}
 * (PyTorch's fused SDPA in the {@code mosaic-bench} module). Inputs are the benchmark's
 * {@code (n, heads, headDim)} row-major arrays; the peer copies them into its own layout once,
 * outside the timed calls.
 */
public interface AttentionPeer extends AutoCloseable {

  /** What runs, with versions and the backend it picked, for the table's header. */
  String name();

  /** Copies the inputs in; the returned call computes softmax(q·kᵀ·scale)·v each time it runs. */
  Call prepare(float[] q, float[] k, float[] v, int n, int heads, int headDim, float scale,
      boolean causal);

  @Override
  void close();

  /** One prepared problem. */
  interface Call extends AutoCloseable {
    /** Computes the attention once (the timed part). */
    void run();

    /** The last run's output as {@code (n, heads, headDim)} row-major. */
    float[] output();

    @Override
    void close();
  }
}
