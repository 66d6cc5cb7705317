package dev.mosaic.kernels.io;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.SafetensorsFile.Entry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads tensor data from the data area of an open file into float32 arrays: straight from the
 * channel into the result in 1 MiB chunks, so a tensor costs its float[] plus one small buffer,
 * and the float[] is only allocated when the heap can hold it ({@link HeapBudget}). Not
 * thread-safe (one reusable chunk buffer): {@link SafetensorsFile} serialises calls.
 */
final class TensorReader {
  private static final int CHUNK_BYTES = 1 << 20;

  private final Path path;
  private final FileChannel channel;
  private final long dataStart;
  private ByteBuffer chunk;

  TensorReader(Path path, FileChannel channel, long dataStart) {
    this.path = path;
    this.channel = channel;
    this.dataStart = dataStart;
  }

  /** The dtype of {@code e} if it can be read as float32, else an error naming it. */
  SafetensorsDtype checkReadable(Entry e) {
    SafetensorsDtype dt = e.knownDtype();
    if (dt == null || !dt.readableAsFloat32()) {
      throw new SafetensorsException(path, e.name(), (dt == null ? "unknown dtype "
          : "unsupported dtype ") + e.dtype() + "; only F32, F16, BF16 and F64 can be read as"
          + " float32");
    }
    long[] shape = e.shape();
    for (long d : shape) {
      if (d > Integer.MAX_VALUE) {
        throw new SafetensorsException(path, e.name(), "dimension " + d + " in shape "
            + Arrays.toString(shape) + " does not fit a Java int");
      }
    }
    return dt;
  }

  /** Fails unless {@code e} can be read and its float32 array can ever fit in the heap. */
  void checkFits(Entry e) {
    checkReadable(e);
    HeapBudget.check(path, e);
  }

  /** Reads {@code e} converted to float32. */
  Tensor read(Entry e) {
    SafetensorsDtype dt = checkReadable(e);
    long[] shape = e.shape();
    int[] intShape = new int[shape.length];
    for (int i = 0; i < shape.length; i++) {
      intShape[i] = (int) shape[i];
    }
    float[] out = HeapBudget.allocate(path, e);
    int n = out.length;
    int elemBytes = dt.bits() / 8;
    if (n > 0) {
      if (chunk == null) {
        chunk = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      }
      int perChunk = CHUNK_BYTES / elemBytes;
      long pos = dataStart + e.begin();
      int done = 0;
      try {
        while (done < n) {
          int k = Math.min(perChunk, n - done);
          chunk.clear().limit(k * elemBytes);
          readFully(chunk, pos, e.name());
          chunk.flip();
          pos += (long) k * elemBytes;
          convert(dt, chunk, out, done, k);
          done += k;
        }
      } catch (IOException ex) {
        throw new SafetensorsException(path, e.name(), "cannot read data: " + ex, ex);
      }
    }
    return Tensor.of(out, intShape);
  }

  private void readFully(ByteBuffer buf, long pos, String name) throws IOException {
    while (buf.hasRemaining()) {
      int n = channel.read(buf, pos);
      if (n < 0) {
        throw new SafetensorsException(path, name, "unexpected end of file at byte " + pos
            + " (was it truncated?)");
      }
      pos += n;
    }
  }

  private static void convert(SafetensorsDtype dt, ByteBuffer src, float[] dst, int off, int k) {
    switch (dt) {
      case F32:
        src.asFloatBuffer().get(dst, off, k);
        break;
      case F64: {
        DoubleBuffer d = src.asDoubleBuffer();
        for (int i = 0; i < k; i++) {
          dst[off + i] = (float) d.get(i);
        }
        break;
      }
      case F16: {
        ShortBuffer s = src.asShortBuffer();
        for (int i = 0; i < k; i++) {
          dst[off + i] = Safetensors.halfToFloat(s.get(i));
        }
        break;
      }
      case BF16: {
        ShortBuffer s = src.asShortBuffer();
        for (int i = 0; i < k; i++) {
          dst[off + i] = Safetensors.bfloat16ToFloat(s.get(i));
        }
        break;
      }
      default:
        throw new AssertionError(dt);
    }
  }
}
