package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import java.util.Arrays;

/**
 * An attention output under construction for {@code rows} queries: normalised outputs
 * {@code (batch, rows, heads, headDim)} followed by their log-sum-exps {@code [batch][rows][heads]}
 * in one array, so that the whole partial travels as one message. Starts as "saw no key" (output
 * 0, lse −∞); partials over disjoint key sets merge in exactly with {@link LseMerge}. The
 * accumulator of every strategy: ring and hierarchical merge kernel results into it
 * ({@link QueryAccumulator}), mesh2d also reduces whole partials between ranks.
 */
final class PartialOutput {
  private final int batch;
  private final int rows;
  private final int heads;
  private final int headDim;
  private final int lseOffset;
  private final float[] data;

  PartialOutput(int batch, int rows, int heads, int headDim) {
    this.batch = batch;
    this.rows = rows;
    this.heads = heads;
    this.headDim = headDim;
    this.lseOffset = Blocks.floats(batch, rows, heads, headDim);
    this.data = new float[Math.addExact(lseOffset, Math.multiplyExact(batch, rows * heads))];
    Arrays.fill(data, lseOffset, data.length, Float.NEGATIVE_INFINITY);
  }

  /** Floats of a partial of this shape: what one reduce-scatter message carries. */
  static long floats(int batch, int rows, int heads, int headDim) {
    return (long) batch * rows * heads * (headDim + 1);
  }

  /** The backing array, {@code [o | lse]}; sent as is. */
  float[] data() {
    return data;
  }

  /** The outputs. */
  BlockView output() {
    return Blocks.view(data, 0, batch, rows, heads, headDim);
  }

  /** Copies the log-sum-exps, {@code [batch][rows][heads]}, into {@code dst} from index 0. */
  void copyLse(float[] dst) {
    System.arraycopy(data, lseOffset, dst, 0, data.length - lseOffset);
  }

  /**
   * Merges a kernel result for rows {@code [rowOff, rowOff + part.seq())}; {@code partLse} is laid
   * out {@code [batch][part.seq()][heads]} from index 0, as the kernel writes it.
   */
  void merge(int rowOff, BlockView part, float[] partLse) {
    BlockView acc = output();
    for (int b = 0; b < batch; b++) {
      for (int s = 0; s < part.seq(); s++) {
        for (int h = 0; h < heads; h++) {
          int pl = (b * part.seq() + s) * heads + h;
          int al = lseOffset + (b * rows + rowOff + s) * heads + h;
          LseMerge.mergeRow(data, acc.index(b, rowOff + s, h), data, al, part.data(),
              part.index(b, s, h), partLse[pl], headDim);
        }
      }
    }
  }

  /** Merges a whole partial of the same shape, as {@link #data()} laid it out (a message). */
  void mergeAll(float[] other) {
    if (other.length != data.length) {
      throw new IllegalStateException("a partial output of " + other.length
          + " floats arrived, expected " + data.length);
    }
    int rowFloats = heads * headDim;
    for (int i = 0; i < batch * rows * heads; i++) {
      int o = (i / heads) * rowFloats + (i % heads) * headDim;
      LseMerge.mergeRow(data, o, data, lseOffset + i, other, o, other[lseOffset + i], headDim);
    }
  }
}
