package dev.mosaic.kernels.io;

import dev.mosaic.kernels.Tensor;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Reads and writes NumPy {@code .npy} arrays (format versions 1.0 to 3.0) as float32 {@link
 * Tensor}s. Reads {@code <f4} as is and {@code <f8} (and the big-endian forms) converted to
 * float32, in C order; refuses Fortran order, other dtypes and pickled objects with a one-line
 * {@link TensorFileException} that says how to save the array instead. Writes version 1.0,
 * {@code <f4}, C order, the header padded to 64 bytes as NumPy does.
 */
public final class NpyFile {
  private static final int CHUNK_BYTES = 1 << 20;
  /** Largest header accepted: NumPy itself refuses headers over 10,000 bytes by default. */
  private static final int MAX_HEADER_BYTES = 1 << 20;

  private NpyFile() {}

  /** The array in {@code file}, as float32. */
  public static Tensor read(Path file) {
    long size;
    try {
      size = Files.size(file);
    } catch (NoSuchFileException e) {
      throw new TensorFileException(file, null, "no such file", e);
    } catch (IOException e) {
      throw new TensorFileException(file, null, "cannot open: " + e, e);
    }
    try (InputStream in = Files.newInputStream(file)) {
      return read(in, size, file, null);
    } catch (IOException e) {
      throw new TensorFileException(file, null, "cannot read: " + e, e);
    }
  }

  /**
   * Reads one array from {@code in}, which holds {@code size} bytes (-1 when unknown); {@code file}
   * and {@code array} (an {@code .npz} member, or null) name it in errors.
   */
  static Tensor read(InputStream in, long size, Path file, String array) throws IOException {
    InputStream buffered = new BufferedInputStream(in, 1 << 16);
    byte[] preamble = new byte[8];
    if (!readFully(buffered, preamble)) {
      throw new TensorFileException(file, array, "not a .npy array: shorter than its 8-byte"
          + " preamble");
    }
    for (int i = 0; i < NpyHeader.MAGIC.length; i++) {
      if (preamble[i] != NpyHeader.MAGIC[i]) {
        throw new TensorFileException(file, array, "not a .npy array: it does not start with"
            + " \\x93NUMPY");
      }
    }
    int major = preamble[6] & 0xff;
    long headerLen;
    int lengthBytes;
    if (major == 1) {
      lengthBytes = 2;
    } else if (major == 2 || major == 3) {
      lengthBytes = 4;
    } else {
      throw new TensorFileException(file, array, "npy format version " + major + "."
          + (preamble[7] & 0xff) + " is not supported (expected 1.0, 2.0 or 3.0)");
    }
    byte[] len = new byte[lengthBytes];
    if (!readFully(buffered, len)) {
      throw new TensorFileException(file, array, "truncated npy header");
    }
    headerLen = lengthBytes == 2 ? (len[0] & 0xff) | (len[1] & 0xff) << 8
        : ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
    if (headerLen > MAX_HEADER_BYTES) {
      throw new TensorFileException(file, array, "npy header of " + headerLen
          + " bytes is larger than the " + MAX_HEADER_BYTES + " accepted");
    }
    byte[] header = new byte[(int) headerLen];
    if (!readFully(buffered, header)) {
      throw new TensorFileException(file, array, "truncated npy header");
    }
    String text = new String(header, major == 3 ? StandardCharsets.UTF_8
        : StandardCharsets.ISO_8859_1);
    NpyHeader h = NpyHeader.parse(file, array, text);
    long elements = h.numElements();
    long dataBytes = elements * h.bytesPerElement();
    long start = 8 + lengthBytes + headerLen;
    if (size >= 0 && size != start + dataBytes) {
      throw new TensorFileException(file, array, "holds " + (size - start) + " data bytes, but "
          + h + " needs " + dataBytes + (size < start + dataBytes ? " (truncated)" : ""));
    }
    float[] data = allocate(file, array, h);
    readData(buffered, h, data, file, array);
    if (size < 0 && buffered.read() >= 0) {
      throw new TensorFileException(file, array, "has bytes after the " + dataBytes
          + " data bytes of " + h);
    }
    return Tensor.of(data, h.shape());
  }

  private static float[] allocate(Path file, String array, NpyHeader h) {
    long elements = h.numElements();
    if (elements > HeapBudget.MAX_ELEMENTS) {
      throw new TensorFileException(file, array, h + " has " + TensorNames.count(elements)
          + " elements, more than a Java float[] can hold");
    }
    try {
      return new float[(int) elements];
    } catch (OutOfMemoryError oom) {
      throw new TensorFileException(file, array, "too large for the heap: " + h + " is "
          + HeapBudget.size(elements * Float.BYTES) + " as float32; set MOSAIC_HEAP (bin/mosaic)"
          + " or -Xmx", oom);
    }
  }

  private static void readData(InputStream in, NpyHeader h, float[] out, Path file, String array)
      throws IOException {
    int width = h.bytesPerElement();
    ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES / width * width)
        .order(h.littleEndian() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
    int done = 0;
    while (done < out.length) {
      int n = Math.min(out.length - done, buf.capacity() / width);
      buf.clear().limit(n * width);
      if (!readFully(in, buf.array(), n * width)) {
        throw new TensorFileException(file, array, "truncated: " + h + " ends early");
      }
      if (width == Float.BYTES) {
        buf.asFloatBuffer().get(out, done, n);
      } else {
        for (int i = 0; i < n; i++) {
          out[done + i] = (float) buf.getDouble(i * Double.BYTES);
        }
      }
      done += n;
    }
  }

  private static boolean readFully(InputStream in, byte[] b) throws IOException {
    return readFully(in, b, b.length);
  }

  private static boolean readFully(InputStream in, byte[] b, int len) throws IOException {
    int off = 0;
    while (off < len) {
      int r = in.read(b, off, len - off);
      if (r < 0) {
        return false;
      }
      off += r;
    }
    return true;
  }

  /** Writes {@code t} to {@code file} as a float32 {@code .npy}, atomically. */
  public static void write(Path file, Tensor t) {
    AtomicWrite.to(file, out -> write(out, t));
  }

  /** Writes {@code t} as a float32 {@code .npy} to {@code out} (not closed). */
  static void write(OutputStream out, Tensor t) throws IOException {
    out.write(NpyHeader.encodeFloat32(t.shape()));
    float[] data = t.data();
    ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    int perChunk = CHUNK_BYTES / Float.BYTES;
    for (int off = 0; off < data.length; off += perChunk) {
      int k = Math.min(perChunk, data.length - off);
      buf.clear();
      buf.asFloatBuffer().put(data, off, k);
      out.write(buf.array(), 0, k * Float.BYTES);
    }
  }
}
