package dev.mosaic.spark.layers;

import java.io.Serializable;
import java.util.List;

/**
 * The keys and values that a {@link MultiAxisAttention} computed for positions along its axis, so
 * that queries of other inputs can attend to them later ({@link MultiAxisAttention#attend}).
 * Laid out {@code (batch, seq, 2·embedDim)}, each row packed {@code [k | v]}; {@code batch} is
 * the product of the input's other axes in their order (for a {@code (rows, columns, E)} table
 * attended along rows, {@code batch} is the columns and {@code seq} the rows).
 */
public record KeyValues(float[] data, int batch, int seq, int embedDim) implements Serializable {
  public KeyValues {
    if (batch < 0 || seq < 0 || embedDim < 1) {
      throw new IllegalArgumentException("bad key/value shape (batch " + batch + ", seq " + seq
          + ", embedDim " + embedDim + ")");
    }
    long need = (long) batch * seq * 2 * embedDim;
    if (data.length != need) {
      throw new IllegalArgumentException("key/value data holds " + data.length
          + " floats, expected batch·seq·2·embedDim = " + need);
    }
  }

  /** Bytes of the keys and values. */
  public long bytes() {
    return (long) data.length * Float.BYTES;
  }

  /** Positions {@code [from, from + count)} along the axis, copied. */
  public KeyValues slice(int from, int count) {
    if (from < 0 || count < 0 || from + count > seq) {
      throw new IndexOutOfBoundsException("positions [" + from + ", " + (from + count)
          + ") outside " + seq);
    }
    int row = 2 * embedDim;
    float[] out = new float[batch * count * row];
    for (int b = 0; b < batch; b++) {
      System.arraycopy(data, (b * seq + from) * row, out, b * count * row, count * row);
    }
    return new KeyValues(out, batch, count, embedDim);
  }

  /** The shards joined in order along the axis (the inverse of {@link #slice}). */
  public static KeyValues concat(List<KeyValues> shards) {
    if (shards.isEmpty()) {
      throw new IllegalArgumentException("shards is empty: expected at least one");
    }
    KeyValues first = shards.get(0);
    int seq = 0;
    for (KeyValues s : shards) {
      if (s.batch != first.batch || s.embedDim != first.embedDim) {
        throw new IllegalArgumentException("shards differ: batch " + s.batch + " vs "
            + first.batch + ", embedDim " + s.embedDim + " vs " + first.embedDim);
      }
      seq += s.seq;
    }
    int row = 2 * first.embedDim;
    float[] out = new float[first.batch * seq * row];
    for (int b = 0; b < first.batch; b++) {
      int at = 0;
      for (KeyValues s : shards) {
        System.arraycopy(s.data, b * s.seq * row, out, (b * seq + at) * row, s.seq * row);
        at += s.seq;
      }
    }
    return new KeyValues(out, first.batch, seq, first.embedDim);
  }
}
