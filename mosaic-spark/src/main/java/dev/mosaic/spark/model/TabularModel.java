package dev.mosaic.spark.model;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.Strategy;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A nanoTabPFN-style classifier over a table of {@code rows × features}. Every cell is embedded
 * ({@code value·w + b}, one encoder shared by all features), the label becomes one more column
 * (train rows: their label; other rows: 0), then each block runs attention across the columns of
 * a row (local), attention across rows along each column (the row strategy: {@code ring} over
 * Spark tasks; rows see only the training rows, global positions {@code < nTrain}), and an MLP,
 * each followed by a residual and LayerNorm. A head turns the label column into class logits.
 *
 * <p>Inside a Spark task the table is the task's shard of rows; only the row attention talks to
 * other tasks. Weights come from the seed (untrained): the model shows the computation, not a
 * trained TabPFN.
 */
public final class TabularModel implements AutoCloseable {
  private final TabularConfig cfg;
  private final float[] cellW;
  private final float[] cellB;
  private final float[] labelW;
  private final float[] labelB;
  private final List<Block> blocks = new ArrayList<>();
  private final Mlp head;
  private final Parallel parallel;

  private record Block(MultiAxisAttention features, MultiAxisAttention rows, Mlp mlp,
      LayerNorm norm1, LayerNorm norm2, LayerNorm norm3) {}

  /**
   * @param rowStrategy the strategy of the row attention, shared by all blocks (not closed here);
   *     null for local
   */
  public TabularModel(TabularConfig cfg, Strategy rowStrategy, int threads) {
    this.cfg = cfg;
    int e = cfg.embedDim();
    Random rnd = new Random(cfg.seed());
    cellW = gaussian(rnd, e);
    cellB = gaussian(rnd, e);
    labelW = gaussian(rnd, e);
    labelB = gaussian(rnd, e);
    parallel = new Parallel(threads, "mosaic-model");
    for (int i = 0; i < cfg.layers(); i++) {
      MultiAxisAttention feat = MultiAxisAttention.builder(e, cfg.heads(), 1)
          .seed(rnd.nextLong()).threads(threads).build();
      MultiAxisAttention.Builder rowsB = MultiAxisAttention.builder(e, cfg.heads(), 0)
          .seed(rnd.nextLong()).threads(threads);
      if (rowStrategy != null) {
        rowsB.strategy(rowStrategy);
      }
      blocks.add(new Block(feat, rowsB.build(), new Mlp(e, cfg.mlpHidden(), e, rnd),
          new LayerNorm(e), new LayerNorm(e), new LayerNorm(e)));
    }
    head = new Mlp(e, cfg.mlpHidden(), cfg.classes(), rnd);
  }

  private static float[] gaussian(Random rnd, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return v;
  }

  public TabularConfig config() {
    return cfg;
  }

  /**
   * Class logits {@code (rows, classes)} for this block of rows.
   *
   * @param table {@code (rows, features)}, features already standardised
   * @param labels class index per row; read only where {@code rowOffset + row < nTrain}
   * @param rowOffset global position of this block's first row
   * @param nTrain rows at global positions {@code < nTrain} are the training rows
   */
  public Tensor forward(Tensor table, int[] labels, long rowOffset, long nTrain) {
    if (table.rank() != 2 || table.dim(1) != cfg.features()) {
      throw new IllegalArgumentException("table must be (rows, " + cfg.features() + "), got "
          + table);
    }
    int rows = table.dim(0);
    if (labels.length < rows) {
      throw new IllegalArgumentException(
          "labels hold " + labels.length + " values for " + rows + " rows");
    }
    int cols = cfg.features() + 1;
    int e = cfg.embedDim();
    Tensor x = Tensor.zeros(rows, cols, e);
    float[] xd = x.data();
    float[] td = table.data();
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        boolean label = c == cfg.features();
        float v = label ? (rowOffset + r < nTrain ? labels[r] : 0f) : td[r * cfg.features() + c];
        float[] w = label ? labelW : cellW;
        float[] b = label ? labelB : cellB;
        int off = (r * cols + c) * e;
        for (int i = 0; i < e; i++) {
          xd[off + i] = v * w[i] + b[i];
        }
      }
    }
    for (Block blk : blocks) {
      x = blk.norm1().residual(x, blk.features().forward(x));
      x = blk.norm2().residual(x, blk.rows().forward(x, nTrain));
      float[] m = blk.mlp().forward(x.data(), rows * cols, parallel);
      x = blk.norm3().residual(x, Tensor.of(m, x.shape()));
    }
    float[] labelCol = new float[rows * e];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(x.data(), (r * cols + cfg.features()) * e, labelCol, r * e, e);
    }
    return Tensor.of(head.forward(labelCol, rows, parallel), rows, cfg.classes());
  }

  /** The predicted class of each row: the arg-max of its logits. */
  public static int[] argMax(Tensor logits) {
    int rows = logits.dim(0);
    int c = logits.dim(1);
    int[] out = new int[rows];
    float[] d = logits.data();
    for (int r = 0; r < rows; r++) {
      int best = 0;
      for (int j = 1; j < c; j++) {
        if (d[r * c + j] > d[r * c + best]) {
          best = j;
        }
      }
      out[r] = best;
    }
    return out;
  }

  @Override
  public void close() {
    for (Block b : blocks) {
      b.features().close();
      b.rows().close();
    }
    parallel.close();
  }
}
