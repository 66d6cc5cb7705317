package dev.mosaic.kernels.io;

import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open safetensors file whose header has been parsed and fully validated; tensor data is read on
 * demand, one tensor at a time, straight from the {@link FileChannel} into the result array in
 * chunks (so reading a tensor needs its float32 array plus one small buffer of heap, whatever the
 * file size). A tensor the heap cannot hold is refused with a one-line {@link
 * SafetensorsException} that says how large it is and how to raise the heap.
 *
 * <p>Validation at {@link #open} (every failure is a {@link SafetensorsException} naming the file,
 * the tensor if any, and the problem, in one line of bounded length): file at least 8 bytes; header
 * length at most {@value #MAX_HEADER_BYTES} bytes and within the file; header valid UTF-8 and a
 * JSON object without duplicate keys; at most {@value #MAX_TENSORS} tensors; {@code __metadata__},
 * if present, an object of at most {@value #MAX_METADATA_KEYS} string values; every other entry an
 * object with a string {@code dtype}, an array {@code shape} of at most {@value #MAX_RANK}
 * non-negative integers and an array {@code data_offsets} of two non-negative integers {@code begin
 * <= end}; for known dtypes, {@code end - begin} equal to the element count times the element size;
 * every range inside the data area; no two ranges overlapping. The header is parsed as a stream:
 * opening costs about 150 bytes of heap per tensor plus its name, not a tree of the document.
 *
 * <p>Gaps: like the reference implementation, the data area must be fully indexed: sorted by
 * offset, each tensor must start where the previous one ended, the first at 0, and the last must
 * end at the end of the file. Unused bytes between or after tensors are rejected ("not covered by
 * any tensor").
 *
 * <p>Dtypes: any dtype in {@link SafetensorsDtype} is accepted in the header, and so are unknown
 * dtype names (whose byte size cannot be checked); only F32, F16, BF16 and F64 can be read, others
 * are refused when that tensor is read, so other tensors of the same file stay readable.
 *
 * <p>Reads through one instance are serialized (synchronized); it may be shared between threads.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** Largest header accepted, as in the reference implementation (100 MB). */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  /**
   * Most tensors one file may hold. Published checkpoints have thousands per file (tens of
   * thousands over all shards of the largest models); a million keeps room for any real file while
   * bounding what a hostile 100 MB header (1.6 million tiny entries) can cost to open.
   */
  public static final int MAX_TENSORS = 1_000_000;

  /** Most {@code __metadata__} keys (real files have a handful). */
  public static final int MAX_METADATA_KEYS = 100_000;

  /** Most dimensions of a shape (NumPy's limit). */
  public static final int MAX_RANK = 64;

  static final String METADATA_KEY = "__metadata__";

  /** One tensor's header entry. {@code begin}/{@code end} are relative to the data area. */
  public record Entry(String name, String dtype, long[] shape, long begin, long end) {
    public Entry {
      shape = shape.clone();
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }

    /** Product of the dimensions (1 for a scalar). */
    public long numElements() {
      long n = 1;
      for (long d : shape) {
        n *= d; // validated at open not to overflow
      }
      return n;
    }

    public long byteLength() {
      return end - begin;
    }

    /** The known dtype, or null if the header names one this reader does not know. */
    public SafetensorsDtype knownDtype() {
      return SafetensorsDtype.fromName(dtype);
    }

    @Override
    public String toString() {
      return name + ": " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
    }
  }

  private final Path path;
  private final FileChannel channel;
  private final SafetensorsHeader header;
  private final TensorReader reader;

  private SafetensorsFile(Path path, FileChannel channel, SafetensorsHeader header) {
    this.path = path;
    this.channel = channel;
    this.header = header;
    this.reader = new TensorReader(path, channel, header.dataStart());
  }

  /** Opens {@code file} and validates its header. Close the result. */
  public static SafetensorsFile open(Path file) {
    FileChannel ch;
    try {
      ch = FileChannel.open(file, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new SafetensorsException(file, null, "no such file", e);
    } catch (IOException e) {
      throw new SafetensorsException(file, null, "cannot open: " + e, e);
    }
    try {
      return new SafetensorsFile(file, ch, SafetensorsHeader.read(file, ch));
    } catch (RuntimeException | Error e) {
      closeQuietly(ch, e);
      throw e;
    } catch (IOException e) {
      closeQuietly(ch, e);
      throw new SafetensorsException(file, null, "cannot read header: " + e, e);
    }
  }

  private static void closeQuietly(FileChannel ch, Throwable primary) {
    try {
      ch.close();
    } catch (IOException suppressed) {
      primary.addSuppressed(suppressed);
    }
  }

  public Path path() {
    return path;
  }

  /** Tensor names in data-offset order. */
  public List<String> names() {
    return List.copyOf(header.entries().keySet());
  }

  /** All entries, in data-offset order (unmodifiable). */
  public Map<String, Entry> entries() {
    return header.entries();
  }

  public boolean contains(String name) {
    return header.entries().containsKey(name);
  }

  /**
   * The entry for {@code name}; a {@link SafetensorsException} listing the first {@value
   * TensorNames#SHOWN} names if absent.
   */
  public Entry entry(String name) {
    Entry e = header.entries().get(name);
    if (e == null) {
      throw new SafetensorsException(path, name, "no such tensor; the file has "
          + TensorNames.count(header.entries().size()) + " tensor(s): "
          + TensorNames.list(header.entries().keySet()));
    }
    return e;
  }

  /** The {@code __metadata__} map (empty if absent), unmodifiable. */
  public Map<String, String> metadata() {
    return header.metadata();
  }

  /** Size in bytes of the data area (after the header). */
  public long dataLength() {
    return header.dataLength();
  }

  /**
   * Reads every tensor, in offset order, converted to float32. Fails before reading any when one
   * cannot be converted, or when together they can never fit in the heap.
   */
  public Map<String, Tensor> readAll() {
    long floatBytes = 0;
    for (Entry e : header.entries().values()) {
      reader.checkFits(e);
      floatBytes += e.numElements() * Float.BYTES; // each < 2^33 after checkFits
    }
    HeapBudget.checkTotal(path, header.entries().size(), floatBytes);
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (Entry e : header.entries().values()) {
      out.put(e.name(), read(e));
    }
    return out;
  }

  /** Reads one tensor converted to float32. */
  public Tensor read(String name) {
    return read(entry(name));
  }

  private synchronized Tensor read(Entry e) {
    return reader.read(e);
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      throw new SafetensorsException(path, null, "cannot close: " + e, e);
    }
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path + ", " + header.entries().size() + " tensors]";
  }
}
