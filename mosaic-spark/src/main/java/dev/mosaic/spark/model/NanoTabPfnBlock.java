package dev.mosaic.spark.model;

import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.MultiAxisAttention;

/**
 * One nanoTabPFN transformer block over a {@code (rows, columns, E)} table, three post-norm
 * steps: attention across the cells of a row → + residual → norm1; attention across the rows of
 * each column, keys limited to the train rows → + residual → norm2;
 * {@code linear2(GELU(linear1(t)))} → + residual → norm3. The steps are public so that a scorer
 * with cached train-row keys and values ({@code rows()} replaced by a cached attention) can reuse
 * the other two unchanged.
 */
public final class NanoTabPfnBlock implements AutoCloseable {
  private final MultiAxisAttention cells;
  private final MultiAxisAttention rows;
  private final Linear linear1;
  private final Linear linear2;
  private final LayerNorm norm1;
  private final LayerNorm norm2;
  private final LayerNorm norm3;

  NanoTabPfnBlock(MultiAxisAttention cells, MultiAxisAttention rows, Linear linear1,
      Linear linear2, LayerNorm norm1, LayerNorm norm2, LayerNorm norm3) {
    this.cells = cells;
    this.rows = rows;
    this.linear1 = linear1;
    this.linear2 = linear2;
    this.norm1 = norm1;
    this.norm2 = norm2;
    this.norm3 = norm3;
  }

  /** The whole block; rows at global positions {@code >= nTrain} are not used as keys. */
  public Tensor forward(Tensor table, long nTrain, Parallel parallel) {
    Tensor t = cellStep(table);
    t = rowStep(t, rows.forward(t, nTrain));
    return mlpStep(t, parallel);
  }

  /** Attention across the cells of each row, + residual, norm1. */
  public Tensor cellStep(Tensor table) {
    return norm1.residual(table, cells.forward(table));
  }

  /** + residual and norm2 on the output of the row attention (however it was computed). */
  public Tensor rowStep(Tensor table, Tensor rowAttention) {
    return norm2.residual(table, rowAttention);
  }

  /** {@code linear2(GELU(linear1(t)))}, + residual, norm3. */
  public Tensor mlpStep(Tensor table, Parallel parallel) {
    int n = table.size() / table.dim(-1);
    return norm3.residual(table,
        Tensor.of(mlp(linear1, linear2, table.data(), n, parallel), table.shape()));
  }

  /** The attention across rows (its weights, and its strategy when sharded). */
  public MultiAxisAttention rowAttention() {
    return rows;
  }

  /** The attention across the cells of a row. */
  public MultiAxisAttention cellAttention() {
    return cells;
  }

  /** {@code down(GELU(up(x)))} over {@code n} rows of {@code x}, exact (erf) GELU. */
  static float[] mlp(Linear up, Linear down, float[] x, int n, Parallel parallel) {
    float[] hidden = up.forward(x, n, parallel);
    ExactGelu.applyInPlace(hidden);
    return down.forward(hidden, n, parallel);
  }

  @Override
  public void close() {
    cells.close();
    rows.close();
  }
}
