package dev.mosaic.kernels.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.mosaic.kernels.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Reads and writes Hugging Face safetensors files as float32 {@link Tensor}s.
 *
 * <p>Format: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON mapping each
 * tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the
 * first byte after the header) plus an optional {@code "__metadata__"} object of strings, then the
 * little-endian row-major data.
 *
 * <p>Reading converts F32, F16, BF16 and F64 to float32 and refuses other dtypes; see {@link
 * SafetensorsFile} for what is validated (everything, with {@link SafetensorsException}s that name
 * the file, the tensor and the problem) and for reading several tensors from one open file.
 *
 * <p>Writing produces F32 tensors in the map's iteration order, back to back from offset 0, with
 * the header padded with spaces to a multiple of 8 bytes, {@code __metadata__} first when given.
 * The file is written to a temporary file in the same directory and moved into place, so readers
 * never see a partial file.
 */
public final class Safetensors {
  private static final int CHUNK_FLOATS = 1 << 18; // 1 MiB
  private static final JsonFactory JSON = new JsonFactory();

  private Safetensors() {}

  /** Every tensor in {@code file}, converted to float32, in data-offset order. */
  public static Map<String, Tensor> read(Path file) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      return f.readAll();
    }
  }

  /**
   * The tensor {@code name} from {@code file}, converted to float32; other tensors are not read.
   * Absent names raise a {@link SafetensorsException} listing the names the file has.
   */
  public static Tensor read(Path file, String name) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      return f.read(name);
    }
  }

  /** The {@code __metadata__} of {@code file} (empty if it has none). */
  public static Map<String, String> metadata(Path file) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      return f.metadata();
    }
  }

  /** Writes {@code tensors} as F32, without metadata. See {@link #write(Path, Map, Map)}. */
  public static void write(Path file, Map<String, Tensor> tensors) {
    write(file, tensors, Map.of());
  }

  /**
   * Writes {@code tensors} as F32 in iteration order, with {@code metadata} (may be empty or null)
   * as {@code __metadata__}. Atomic: the data goes to a temporary file in the same directory,
   * which is then moved over {@code file}.
   */
  public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
    if (tensors == null) {
      throw new SafetensorsException(file, null, "tensor map is null");
    }
    byte[] header = header(file, tensors, metadata == null ? Map.of() : metadata);
    Path abs = file.toAbsolutePath();
    Path dir = abs.getParent();
    Path tmp = createTemp(file, dir, abs.getFileName().toString());
    boolean done = false;
    try {
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(header.length).put(header).flip();
        writeFully(ch, head);
        ByteBuffer buf =
            ByteBuffer.allocateDirect(CHUNK_FLOATS * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (Tensor t : tensors.values()) {
          float[] data = t.data();
          for (int off = 0; off < data.length; off += CHUNK_FLOATS) {
            int k = Math.min(CHUNK_FLOATS, data.length - off);
            buf.clear();
            buf.asFloatBuffer().put(data, off, k);
            buf.limit(k * Float.BYTES);
            writeFully(ch, buf);
          }
        }
        ch.force(true);
      }
      try {
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
      }
      done = true;
    } catch (IOException e) {
      throw new SafetensorsException(file, null, "cannot write: " + e, e);
    } finally {
      if (!done) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
          // best effort; the original failure is what matters
        }
      }
    }
  }

  private static Path createTemp(Path file, Path dir, String base) {
    // Not Files.createTempFile: that creates the file with mode 0600, which the final file would
    // keep; this gets the usual permissions for new files.
    for (int attempt = 0; ; attempt++) {
      Path tmp =
          dir.resolve(
              "." + base + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
      try {
        Files.newByteChannel(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
        return tmp;
      } catch (FileAlreadyExistsException e) {
        if (attempt >= 100) {
          throw new SafetensorsException(file, null, "cannot create a temporary file in " + dir, e);
        }
      } catch (IOException e) {
        throw new SafetensorsException(
            file, null, "cannot create a temporary file in " + dir + ": " + e, e);
      }
    }
  }

  private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  /**
   * The padded header JSON for {@code tensors} laid out back to back as F32, written as a stream.
   * Refuses what {@link SafetensorsFile} would refuse to read back: too many tensors or metadata
   * keys, too many dimensions, a header over {@value SafetensorsFile#MAX_HEADER_BYTES} bytes.
   */
  static byte[] header(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
    if (tensors.size() > SafetensorsFile.MAX_TENSORS) {
      throw new SafetensorsException(file, null, TensorNames.count(tensors.size())
          + " tensors, more than the " + TensorNames.count(SafetensorsFile.MAX_TENSORS)
          + " a file may hold");
    }
    if (metadata.size() > SafetensorsFile.MAX_METADATA_KEYS) {
      throw new SafetensorsException(file, null, "metadata has " + TensorNames.count(
          metadata.size()) + " keys, more than the " + TensorNames.count(
          SafetensorsFile.MAX_METADATA_KEYS) + " a file may hold");
    }
    ByteArrayOutputStream json = new ByteArrayOutputStream();
    try (JsonGenerator g = JSON.createGenerator(json)) {
      g.writeStartObject();
      if (!metadata.isEmpty()) {
        g.writeObjectFieldStart(SafetensorsFile.METADATA_KEY);
        for (Map.Entry<String, String> m : metadata.entrySet()) {
          if (m.getKey() == null || m.getValue() == null) {
            throw new SafetensorsException(file, null, "metadata has a null key or value: "
                + TensorNames.abbreviate(m.getKey()) + "=" + TensorNames.abbreviate(m.getValue()));
          }
          g.writeStringField(m.getKey(), m.getValue());
        }
        g.writeEndObject();
      }
      long offset = 0;
      for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
        offset = entry(file, g, e.getKey(), e.getValue(), offset);
      }
      g.writeEndObject();
    } catch (IOException e) {
      throw new SafetensorsException(file, null, "cannot encode header: " + e, e);
    }
    if (json.size() > SafetensorsFile.MAX_HEADER_BYTES - 7) {
      throw new SafetensorsException(file, null, "header would be " + json.size()
          + " bytes, more than the limit of " + SafetensorsFile.MAX_HEADER_BYTES + " bytes");
    }
    int padded = (json.size() + 7) & ~7;
    byte[] out = Arrays.copyOf(json.toByteArray(), padded);
    Arrays.fill(out, json.size(), padded, (byte) ' ');
    return out;
  }

  /** Writes one F32 entry starting at {@code offset}; returns where the next one starts. */
  private static long entry(Path file, JsonGenerator g, String name, Tensor t, long offset)
      throws IOException {
    if (name == null) {
      throw new SafetensorsException(file, null, "tensor name is null");
    }
    if (name.equals(SafetensorsFile.METADATA_KEY)) {
      throw new SafetensorsException(file, name, "tensor name is reserved for the metadata object");
    }
    if (t == null) {
      throw new SafetensorsException(file, name, "tensor is null");
    }
    int[] shape = t.shape();
    if (shape.length > SafetensorsFile.MAX_RANK) {
      throw new SafetensorsException(file, name, "shape has " + shape.length
          + " dimensions, more than the " + SafetensorsFile.MAX_RANK + " a file may hold");
    }
    long n = 1;
    for (int d : shape) {
      n *= d;
    }
    if (n != t.data().length) {
      throw new SafetensorsException(file, name, "shape " + Arrays.toString(shape)
          + " does not match " + t.data().length + " elements");
    }
    g.writeObjectFieldStart(name);
    g.writeStringField("dtype", SafetensorsDtype.F32.name());
    g.writeArrayFieldStart("shape");
    for (int d : shape) {
      g.writeNumber(d);
    }
    g.writeEndArray();
    long end = offset + n * Float.BYTES;
    g.writeArrayFieldStart("data_offsets");
    g.writeNumber(offset);
    g.writeNumber(end);
    g.writeEndArray();
    g.writeEndObject();
    return end;
  }

  /** IEEE 754 binary16 bits (as a short) to float, exactly, including subnormals, ±inf and NaN. */
  public static float halfToFloat(short h) {
    int bits = h & 0xffff;
    int sign = (bits & 0x8000) << 16;
    int exp = (bits >>> 10) & 0x1f;
    int mant = bits & 0x3ff;
    if (exp == 0x1f) {
      // inf (mant == 0) or NaN, keeping the payload in the top mantissa bits
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    if (exp == 0) {
      // zero or subnormal: mant * 2^-24, exact in float
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    // normal: rebias exponent 15 -> 127
    return Float.intBitsToFloat(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
  }

  /** bfloat16 bits (as a short) to float: they are the upper 16 bits of the float32. */
  public static float bfloat16ToFloat(short b) {
    return Float.intBitsToFloat((b & 0xffff) << 16);
  }
}
