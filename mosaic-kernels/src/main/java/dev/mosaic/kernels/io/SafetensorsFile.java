package dev.mosaic.kernels.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open safetensors file whose header has been parsed and fully validated; tensor data is read on
 * demand, one tensor at a time, straight from the {@link FileChannel} into the result array in
 * chunks (so reading a tensor needs its float32 array plus one small buffer of heap, whatever the
 * file size).
 *
 * <p>Validation at {@link #open} (every failure is a {@link SafetensorsException} naming the file,
 * the tensor if any, and the problem): file at least 8 bytes; header length at most {@value
 * #MAX_HEADER_BYTES} bytes and within the file; header valid UTF-8 and a JSON object without
 * duplicate keys; {@code __metadata__}, if present, an object of string values; every other entry
 * an object with a string {@code dtype}, an array {@code shape} of non-negative integers and an
 * array {@code data_offsets} of two non-negative integers {@code begin <= end}; for known dtypes,
 * {@code end - begin} equal to the element count times the element size; every range inside the
 * data area; no two ranges overlapping.
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

  /** Largest element count a Java float[] can hold (what {@link Tensor} allows). */
  static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

  static final String METADATA_KEY = "__metadata__";

  private static final int CHUNK_BYTES = 1 << 20;

  static final ObjectMapper JSON =
      JsonMapper.builder(
              JsonFactory.builder()
                  .streamReadConstraints(
                      StreamReadConstraints.builder()
                          .maxStringLength(Integer.MAX_VALUE)
                          .maxNameLength(Integer.MAX_VALUE)
                          .maxNumberLength(1000)
                          .build())
                  .build())
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

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
  private final long dataStart;
  private final long dataLength;
  private final Map<String, Entry> entries; // offset order
  private final Map<String, String> metadata;
  private ByteBuffer chunk;

  private SafetensorsFile(
      Path path,
      FileChannel channel,
      long dataStart,
      long dataLength,
      Map<String, Entry> entries,
      Map<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.dataStart = dataStart;
    this.dataLength = dataLength;
    this.entries = entries;
    this.metadata = metadata;
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
      return parse(file, ch);
    } catch (RuntimeException e) {
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

  private static SafetensorsFile parse(Path file, FileChannel ch) throws IOException {
    long fileSize = ch.size();
    if (fileSize < 8) {
      throw new SafetensorsException(
          file,
          null,
          "file is " + fileSize + " bytes, too short for the 8-byte header length");
    }
    ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(file, ch, lenBuf, 0);
    long headerLen = lenBuf.getLong(0); // unsigned
    if (Long.compareUnsigned(headerLen, MAX_HEADER_BYTES) > 0) {
      throw new SafetensorsException(
          file,
          null,
          "header length "
              + Long.toUnsignedString(headerLen)
              + " bytes exceeds the limit of "
              + MAX_HEADER_BYTES
              + " bytes");
    }
    if (headerLen > fileSize - 8) {
      throw new SafetensorsException(
          file,
          null,
          "header length "
              + headerLen
              + " bytes is larger than the file allows (file is "
              + fileSize
              + " bytes, so at most "
              + (fileSize - 8)
              + ")");
    }
    ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
    readFully(file, ch, headerBuf, 8);
    String headerText;
    try {
      headerText =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(headerBuf.flip())
              .toString();
    } catch (CharacterCodingException e) {
      throw new SafetensorsException(file, null, "header is not valid UTF-8", e);
    }
    JsonNode root;
    try {
      root = JSON.readTree(headerText);
    } catch (IOException e) {
      throw new SafetensorsException(file, null, "header is not valid JSON: " + jsonError(e), e);
    }
    if (root == null || root.isMissingNode()) {
      throw new SafetensorsException(file, null, "header is not valid JSON: it is empty");
    }
    if (!root.isObject()) {
      throw new SafetensorsException(
          file, null, "header must be a JSON object, but is " + describe(root));
    }
    long dataStart = 8 + headerLen;
    long dataLength = fileSize - dataStart;

    Map<String, String> metadata = new LinkedHashMap<>();
    List<Entry> list = new ArrayList<>();
    for (Map.Entry<String, JsonNode> field : root.properties()) {
      if (field.getKey().equals(METADATA_KEY)) {
        parseMetadata(file, field.getValue(), metadata);
      } else {
        list.add(parseEntry(file, field.getKey(), field.getValue(), dataLength));
      }
    }

    // Offset order (stable: ties keep header order). Zero-size tensors sort before a tensor that
    // starts at the same offset.
    list.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long covered = 0;
    Entry prev = null;
    for (Entry e : list) {
      if (e.begin() < covered) {
        throw new SafetensorsException(
            file,
            e.name(),
            "data_offsets ["
                + e.begin()
                + ", "
                + e.end()
                + "] overlap tensor '"
                + prev.name()
                + "' at ["
                + prev.begin()
                + ", "
                + prev.end()
                + "]");
      }
      if (e.begin() > covered) {
        throw new SafetensorsException(
            file,
            e.name(),
            "gap: data bytes ["
                + covered
                + ", "
                + e.begin()
                + ") before this tensor are not covered by any tensor (the data area must be"
                + " fully indexed)");
      }
      covered = e.end();
      prev = e;
    }
    if (covered != dataLength) {
      throw new SafetensorsException(
          file,
          null,
          "data area is "
              + dataLength
              + " bytes but the tensors cover only "
              + covered
              + " (bytes ["
              + covered
              + ", "
              + dataLength
              + ") are not covered by any tensor; the data area must be fully indexed)");
    }
    Map<String, Entry> entries = new LinkedHashMap<>();
    for (Entry e : list) {
      entries.put(e.name(), e);
    }
    return new SafetensorsFile(
        file,
        ch,
        dataStart,
        dataLength,
        Collections.unmodifiableMap(entries),
        Collections.unmodifiableMap(metadata));
  }

  private static void parseMetadata(Path file, JsonNode node, Map<String, String> out) {
    if (!node.isObject()) {
      throw new SafetensorsException(
          file, null, METADATA_KEY + " must be an object of strings, but is " + describe(node));
    }
    for (Map.Entry<String, JsonNode> f : node.properties()) {
      if (!f.getValue().isTextual()) {
        throw new SafetensorsException(
            file,
            null,
            METADATA_KEY
                + " value for key '"
                + f.getKey()
                + "' must be a string, but is "
                + describe(f.getValue()));
      }
      out.put(f.getKey(), f.getValue().textValue());
    }
  }

  private static Entry parseEntry(Path file, String name, JsonNode node, long dataLength) {
    if (!node.isObject()) {
      throw new SafetensorsException(
          file, name, "header entry must be an object, but is " + describe(node));
    }
    JsonNode dtypeNode = required(file, name, node, "dtype");
    if (!dtypeNode.isTextual()) {
      throw new SafetensorsException(
          file, name, "\"dtype\" must be a string, but is " + describe(dtypeNode));
    }
    String dtype = dtypeNode.textValue();

    JsonNode shapeNode = required(file, name, node, "shape");
    if (!shapeNode.isArray()) {
      throw new SafetensorsException(
          file, name, "\"shape\" must be an array of integers, but is " + describe(shapeNode));
    }
    long[] shape = new long[shapeNode.size()];
    long count = 1;
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = shapeNode.get(i);
      if (!d.isIntegralNumber() || !d.canConvertToLong()) {
        throw new SafetensorsException(
            file,
            name,
            "\"shape\"[" + i + "] must be an integer, but is " + describe(d));
      }
      shape[i] = d.longValue();
      if (shape[i] < 0) {
        throw new SafetensorsException(
            file,
            name,
            "\"shape\" " + shapeNode + " has negative dimension " + shape[i] + " at index " + i);
      }
    }
    for (long d : shape) {
      count = multiplyOrFail(file, name, count, d, shapeNode);
    }

    JsonNode offNode = required(file, name, node, "data_offsets");
    if (!offNode.isArray() || offNode.size() != 2) {
      throw new SafetensorsException(
          file,
          name,
          "\"data_offsets\" must be an array of two integers [begin, end], but is "
              + describe(offNode));
    }
    long[] off = new long[2];
    for (int i = 0; i < 2; i++) {
      JsonNode o = offNode.get(i);
      if (!o.isIntegralNumber() || !o.canConvertToLong() || o.longValue() < 0) {
        throw new SafetensorsException(
            file,
            name,
            "\"data_offsets\"[" + i + "] must be a non-negative integer, but is " + describe(o));
      }
      off[i] = o.longValue();
    }
    long begin = off[0];
    long end = off[1];
    if (begin > end) {
      throw new SafetensorsException(
          file,
          name,
          "data_offsets [" + begin + ", " + end + "] have begin > end");
    }
    if (end > dataLength) {
      throw new SafetensorsException(
          file,
          name,
          "data_offsets ["
              + begin
              + ", "
              + end
              + "] are outside the data area, which is "
              + dataLength
              + " bytes");
    }
    SafetensorsDtype known = SafetensorsDtype.fromName(dtype);
    if (known != null) {
      long bits = multiplyOrFail(file, name, count, known.bits(), shapeNode);
      if (bits % 8 != 0) {
        throw new SafetensorsException(
            file,
            name,
            "shape " + shapeNode + " of " + dtype + " is not a whole number of bytes");
      }
      long bytes = bits / 8;
      if (bytes != end - begin) {
        throw new SafetensorsException(
            file,
            name,
            "size mismatch: shape "
                + shapeNode
                + " with dtype "
                + dtype
                + " needs "
                + bytes
                + " bytes, but data_offsets ["
                + begin
                + ", "
                + end
                + "] span "
                + (end - begin));
      }
    }
    return new Entry(name, dtype, shape, begin, end);
  }

  private static long multiplyOrFail(Path file, String name, long a, long b, JsonNode shapeNode) {
    try {
      return Math.multiplyExact(a, b);
    } catch (ArithmeticException e) {
      throw new SafetensorsException(
          file, name, "shape " + shapeNode + " is too large (size overflows 64 bits)");
    }
  }

  private static JsonNode required(Path file, String name, JsonNode entry, String key) {
    JsonNode v = entry.get(key);
    if (v == null) {
      throw new SafetensorsException(file, name, "header entry is missing \"" + key + "\"");
    }
    return v;
  }

  private static String describe(JsonNode n) {
    String kind;
    switch (n.getNodeType()) {
      case ARRAY:
        kind = "an array";
        break;
      case OBJECT:
        kind = "an object";
        break;
      case STRING:
        kind = "a string";
        break;
      case NUMBER:
        kind = n.isIntegralNumber() ? "an integer" : "a non-integer number";
        break;
      case BOOLEAN:
        kind = "a boolean";
        break;
      case NULL:
        return "null";
      default:
        kind = n.getNodeType().toString().toLowerCase();
    }
    String text = n.toString();
    if (text.length() > 60) {
      text = text.substring(0, 57) + "...";
    }
    return kind + " (" + text + ")";
  }

  /** Jackson's message without its multi-line "[Source: ...]" suffix, plus where it happened. */
  private static String jsonError(IOException e) {
    if (e instanceof JsonProcessingException) {
      JsonProcessingException jpe = (JsonProcessingException) e;
      String msg = oneLine(jpe.getOriginalMessage());
      JsonLocation loc = jpe.getLocation();
      if (loc != null && loc.getLineNr() > 0) {
        msg += " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")";
      }
      return msg;
    }
    return oneLine(String.valueOf(e.getMessage()));
  }

  private static String oneLine(String s) {
    if (s == null) {
      return "";
    }
    return s.replaceAll("\\s*\\R\\s*", " ").trim();
  }

  private static void readFully(Path file, FileChannel ch, ByteBuffer buf, long pos)
      throws IOException {
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new SafetensorsException(
            file, null, "unexpected end of file at byte " + pos + " (was it truncated?)");
      }
      pos += n;
    }
  }

  public Path path() {
    return path;
  }

  /** Tensor names in data-offset order. */
  public List<String> names() {
    return List.copyOf(entries.keySet());
  }

  /** All entries, in data-offset order (unmodifiable). */
  public Map<String, Entry> entries() {
    return entries;
  }

  public boolean contains(String name) {
    return entries.containsKey(name);
  }

  /** The entry for {@code name}; a {@link SafetensorsException} listing the names if absent. */
  public Entry entry(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new SafetensorsException(
          path,
          name,
          "no such tensor; the file has "
              + entries.size()
              + " tensor(s): "
              + listNames());
    }
    return e;
  }

  private String listNames() {
    StringBuilder sb = new StringBuilder("[");
    int shown = 0;
    for (String n : entries.keySet()) {
      if (shown == 50) {
        sb.append(", ... (").append(entries.size() - shown).append(" more)");
        break;
      }
      if (shown > 0) {
        sb.append(", ");
      }
      sb.append(n);
      shown++;
    }
    return sb.append(']').toString();
  }

  /** The {@code __metadata__} map (empty if absent), unmodifiable. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Size in bytes of the data area (after the header). */
  public long dataLength() {
    return dataLength;
  }

  /** Reads every tensor, in offset order, converted to float32. */
  public Map<String, Tensor> readAll() {
    for (Entry e : entries.values()) {
      checkReadable(e);
    }
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (Entry e : entries.values()) {
      out.put(e.name(), read(e));
    }
    return out;
  }

  /** Reads one tensor converted to float32. */
  public Tensor read(String name) {
    return read(entry(name));
  }

  private SafetensorsDtype checkReadable(Entry e) {
    SafetensorsDtype dt = e.knownDtype();
    if (dt == null || !dt.readableAsFloat32()) {
      throw new SafetensorsException(
          path,
          e.name(),
          (dt == null ? "unknown dtype " : "unsupported dtype ")
              + e.dtype()
              + "; only F32, F16, BF16 and F64 can be read as float32");
    }
    long[] shape = e.shape();
    for (long d : shape) {
      if (d > Integer.MAX_VALUE) {
        throw new SafetensorsException(
            path, e.name(), "dimension " + d + " in shape " + Arrays.toString(shape)
                + " does not fit a Java int");
      }
    }
    if (e.numElements() > MAX_ELEMENTS) {
      throw new SafetensorsException(
          path,
          e.name(),
          "shape " + Arrays.toString(shape) + " has " + e.numElements()
              + " elements, more than a Java float[] can hold");
    }
    return dt;
  }

  private synchronized Tensor read(Entry e) {
    SafetensorsDtype dt = checkReadable(e);
    long[] shape = e.shape();
    int[] intShape = new int[shape.length];
    for (int i = 0; i < shape.length; i++) {
      intShape[i] = (int) shape[i];
    }
    int n = (int) e.numElements();
    float[] out = new float[n];
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
          readFully(path, channel, chunk, pos);
          chunk.flip();
          pos += (long) k * elemBytes;
          convert(dt, chunk, out, done, k);
          done += k;
        }
      } catch (SafetensorsException ex) {
        throw new SafetensorsException(path, e.name(), ex.problem(), ex);
      } catch (IOException ex) {
        throw new SafetensorsException(path, e.name(), "cannot read data: " + ex, ex);
      }
    }
    return Tensor.of(out, intShape);
  }

  private static void convert(SafetensorsDtype dt, ByteBuffer src, float[] dst, int off, int k) {
    switch (dt) {
      case F32:
        src.asFloatBuffer().get(dst, off, k);
        break;
      case F64:
        {
          DoubleBuffer d = src.asDoubleBuffer();
          for (int i = 0; i < k; i++) {
            dst[off + i] = (float) d.get(i);
          }
          break;
        }
      case F16:
        {
          ShortBuffer s = src.asShortBuffer();
          for (int i = 0; i < k; i++) {
            dst[off + i] = Safetensors.halfToFloat(s.get(i));
          }
          break;
        }
      case BF16:
        {
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
    return "SafetensorsFile[" + path + ", " + entries.size() + " tensors]";
  }
}
