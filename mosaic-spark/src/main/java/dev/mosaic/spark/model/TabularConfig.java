package dev.mosaic.spark.model;

/**
 * Sizes of a nanoTabPFN model with seeded untrained weights (the demo's, and the ML stage's when
 * no checkpoint is given).
 *
 * @param features number of feature columns of the table
 * @param classes number of target classes
 * @param embedDim width of every cell's embedding
 * @param heads attention heads (feature and row attention)
 * @param layers number of (feature attention, row attention, MLP) blocks
 * @param mlpHidden hidden width of the MLPs
 * @param seed seed of the (untrained) weights; every task uses the same
 */
public record TabularConfig(int features, int classes, int embedDim, int heads, int layers,
    int mlpHidden, long seed) implements java.io.Serializable {

  public TabularConfig {
    positive("features", features);
    positive("classes", classes);
    positive("embedDim", embedDim);
    positive("heads", heads);
    positive("layers", layers);
    positive("mlpHidden", mlpHidden);
    if (embedDim % heads != 0) {
      throw new IllegalArgumentException(
          "embedDim " + embedDim + " is not divisible by heads " + heads);
    }
  }

  private static void positive(String name, int v) {
    if (v < 1) {
      throw new IllegalArgumentException(name + " must be at least 1, got " + v);
    }
  }

  /** The nanoTabPFN sizes: this width, heads, blocks and MLP, one output per class. */
  public NanoTabPfnShape nanoTabPfnShape() {
    return new NanoTabPfnShape(embedDim, heads, layers, mlpHidden, classes);
  }

  /** {@link NanoTabPfnInit#seeded} weights of {@link #nanoTabPfnShape} from {@link #seed}. */
  public java.util.Map<String, dev.mosaic.kernels.Tensor> seededWeights() {
    return NanoTabPfnInit.seeded(nanoTabPfnShape(), seed);
  }

  /**
   * The demo's default: 32-wide embeddings as 2 heads of 16 (same FLOPs as 4 heads of 8; the
   * kernel runs head dim 16 faster), 2 blocks.
   */
  public static TabularConfig defaults(int features, int classes) {
    return new TabularConfig(features, classes, 32, 2, 2, 64, 1234);
  }
}
