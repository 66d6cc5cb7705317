package dev.mosaic.kernels.gpu;

/**
 * A {@code (batch, seq, heads, headDim)} block in device memory, as the kernels address it:
 * element {@code (b, s, h, c)} sits at {@code address + (b·batchStride + s·rowStride + h·headDim
 * + c)·elementBytes}. The device counterpart of a {@code BlockView}.
 */
public record DeviceBlock(long address, int batch, int seq, int heads, int headDim,
    long batchStride, int rowStride, int elementBytes) {

  /** A contiguous block at {@code address}. */
  public static DeviceBlock contiguous(long address, int batch, int seq, int heads, int headDim,
      int elementBytes) {
    int row = heads * headDim;
    return new DeviceBlock(address, batch, seq, heads, headDim, (long) seq * row, row,
        elementBytes);
  }

  /** Rows {@code [from, from + n)} of every batch entry (same strides). */
  public DeviceBlock rows(int from, int n) {
    if (from < 0 || n < 0 || from + n > seq) {
      throw new IndexOutOfBoundsException("rows [" + from + ", " + (from + n) + ") of a block of "
          + seq + " rows");
    }
    return new DeviceBlock(address + (long) from * rowStride * elementBytes, batch, n, heads,
        headDim, batchStride, rowStride, elementBytes);
  }
}
