package dev.mosaic.kernels;

/**
 * A strided view of attention inputs or outputs shaped {@code (batch, seq, heads, headDim)} over a
 * float array. Row {@code s} of batch {@code b}, head {@code h} starts at
 * {@code offset + b*batchStride + s*rowStride + h*headDim}. Strides let q, k and v be read straight
 * out of a packed {@code [q | k | v]} projection without copying.
 */
public record BlockView(
    float[] data, int offset, int batch, int seq, int heads, int headDim, int rowStride,
    long batchStride) {

  public BlockView {
    if (batch < 0 || seq < 0 || heads <= 0 || headDim <= 0) {
      throw new IllegalArgumentException(
          "bad block shape (batch " + batch + ", seq " + seq + ", heads " + heads + ", headDim "
              + headDim + ")");
    }
    if (rowStride < heads * headDim) {
      throw new IllegalArgumentException(
          "row stride " + rowStride + " is smaller than heads*headDim " + heads * headDim);
    }
    long last = batch == 0 || seq == 0 ? offset
        : offset + (batch - 1) * batchStride + (long) (seq - 1) * rowStride + (long) heads * headDim;
    if (offset < 0 || last > data.length) {
      throw new IllegalArgumentException(
          "block view reaches element " + last + " of an array of " + data.length);
    }
  }

  /** A contiguous tensor shaped {@code (seq, heads, headDim)} or {@code (batch, seq, heads, headDim)}. */
  public static BlockView of(Tensor t) {
    int[] s = t.shape();
    if (s.length == 3) {
      return new BlockView(t.data(), 0, 1, s[0], s[1], s[2], s[1] * s[2], (long) s[0] * s[1] * s[2]);
    }
    if (s.length == 4) {
      return new BlockView(t.data(), 0, s[0], s[1], s[2], s[3], s[2] * s[3],
          (long) s[1] * s[2] * s[3]);
    }
    throw new IllegalArgumentException(
        "expected a (seq, heads, headDim) or (batch, seq, heads, headDim) tensor, got " + t);
  }

  /** Index of element (b, s, h, 0). */
  public int index(int b, int s, int h) {
    return (int) (offset + b * batchStride + (long) s * rowStride + (long) h * headDim);
  }

  /** Rows {@code [from, from+count)} of the sequence. */
  public BlockView rows(int from, int count) {
    if (from < 0 || count < 0 || from + count > seq) {
      throw new IndexOutOfBoundsException(
          "rows [" + from + ", " + (from + count) + ") outside sequence of " + seq);
    }
    return new BlockView(data, offset + from * rowStride, batch, count, heads, headDim, rowStride,
        batchStride);
  }
}
