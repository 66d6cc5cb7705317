package dev.mosaic.kernels;

import dev.mosaic.kernels.simd.FlashOps;

/**
 * The SIMD ops, counting how the kernel's one-pass softmax step went: {@link #kept} tiles whose
 * maxima stayed within the slack, {@link #redone} tiles it had to redo in two passes. Lets a test
 * show that both paths ran.
 */
final class SoftmaxPassCounter implements FlashOps {
  private final FlashOps ops;
  int kept;
  int redone;

  SoftmaxPassCounter(FlashOps ops) {
    this.ops = ops;
  }

  @Override
  public synchronized boolean exp2ColumnsTrackingMax(float[] a, int off, int stride, int rows,
      int cols, float[] shift, float[] sum, float[] max, float slack) {
    boolean passed = ops.exp2ColumnsTrackingMax(a, off, stride, rows, cols, shift, sum, max, slack);
    if (passed) {
      redone++;
    } else {
      kept++;
    }
    return passed;
  }

  @Override
  public String name() {
    return "counting " + ops.name();
  }

  @Override
  public int lanes() {
    return ops.lanes();
  }

  @Override
  public void gemm(float[] a, int aOff, int aStride, int rows, int depth, float[] b, int bOff,
      int bStride, float[] c, int cOff, int cStride, int cols, boolean accumulate) {
    ops.gemm(a, aOff, aStride, rows, depth, b, bOff, bStride, c, cOff, cStride, cols, accumulate);
  }

  @Override
  public void colMax(float[] a, int off, int stride, int rows, int cols, float[] m) {
    ops.colMax(a, off, stride, rows, cols, m);
  }

  @Override
  public void exp2Columns(float[] a, int off, int stride, int rows, int cols, float[] shift,
      float[] sum) {
    ops.exp2Columns(a, off, stride, rows, cols, shift, sum);
  }

  @Override
  public void scaleColumns(float[] a, int off, int stride, int rows, int cols, float[] f) {
    ops.scaleColumns(a, off, stride, rows, cols, f);
  }

  @Override
  public void gelu(float[] x, int off, int n) {
    ops.gelu(x, off, n);
  }

  @Override
  public void geluBackward(float[] x, float[] dy, float[] dx, int n) {
    ops.geluBackward(x, dy, dx, n);
  }
}
