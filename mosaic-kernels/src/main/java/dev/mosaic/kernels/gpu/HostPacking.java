package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.BlockView;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;

/**
 * Host-side layout of what the kernels read and write: a {@link BlockView} (possibly strided)
 * packed as contiguous {@code (batch, seq, heads, headDim)} in the storage dtype, and contiguous
 * fp32 results unpacked back into a view. Pure Java, shared by the CUDA backend and the tests.
 */
public final class HostPacking {
  private HostPacking() {}

  /** Bytes of {@code x} packed as {@code type}. */
  public static long packedBytes(BlockView x, GpuDtype type) {
    return (long) x.batch() * x.seq() * x.heads() * x.headDim() * type.bytes();
  }

  /** Writes {@code x} into {@code dst} from its position (native order expected). */
  public static void pack(BlockView x, GpuDtype type, ByteBuffer dst) {
    int rs = x.heads() * x.headDim();
    float[] data = x.data();
    if (type == GpuDtype.FP32) {
      FloatBuffer fb = dst.asFloatBuffer();
      for (int b = 0; b < x.batch(); b++) {
        for (int s = 0; s < x.seq(); s++) {
          fb.put(data, x.index(b, s, 0), rs);
        }
      }
      return;
    }
    ShortBuffer sb = dst.asShortBuffer();
    short[] row = new short[rs];
    for (int b = 0; b < x.batch(); b++) {
      for (int s = 0; s < x.seq(); s++) {
        int from = x.index(b, s, 0);
        for (int i = 0; i < rs; i++) {
          row[i] = type == GpuDtype.FP16 ? GpuDtype.floatToHalf(data[from + i])
              : GpuDtype.floatToBf16(data[from + i]);
        }
        sb.put(row);
      }
    }
  }

  /** Reads contiguous fp32 {@code (batch, seq, heads, headDim)} rows into {@code out}. */
  public static void unpack(FloatBuffer src, BlockView out) {
    int rs = out.heads() * out.headDim();
    for (int b = 0; b < out.batch(); b++) {
      for (int s = 0; s < out.seq(); s++) {
        src.get(out.data(), out.index(b, s, 0), rs);
      }
    }
  }
}
