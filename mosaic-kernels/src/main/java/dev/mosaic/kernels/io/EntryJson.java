package dev.mosaic.kernels.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.mosaic.kernels.io.SafetensorsFile.Entry;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads one tensor's header entry, {@code {"dtype": ..., "shape": [...], "data_offsets": [b, e]}},
 * from a streaming parser and checks it on its own: field types, dimensions, offsets within the
 * data area and, for known dtypes, that the byte range fits the shape. Keeps only what the {@link
 * Entry} needs; unknown fields are skipped.
 */
final class EntryJson {
  private final Path file;
  private final String name;
  private final long dataLength;
  private String dtype;
  private long[] shape;
  private long[] offsets;

  private EntryJson(Path file, String name, long dataLength) {
    this.file = file;
    this.name = name;
    this.dataLength = dataLength;
  }

  /** Parses the entry at the parser's current token, leaving the parser on its closing brace. */
  static Entry read(JsonParser p, Path file, String name, long dataLength) throws IOException {
    return new EntryJson(file, name, dataLength).read(p);
  }

  private Entry read(JsonParser p) throws IOException {
    if (p.currentToken() != JsonToken.START_OBJECT) {
      throw fail("header entry must be an object, but is " + JsonPreview.describe(p));
    }
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      p.nextToken();
      switch (field) {
        case "dtype":
          once(dtype, field);
          dtype = readDtype(p);
          break;
        case "shape":
          once(shape, field);
          shape = readShape(p);
          break;
        case "data_offsets":
          once(offsets, field);
          offsets = readOffsets(p);
          break;
        default:
          p.skipChildren(); // extra fields are allowed and ignored
      }
    }
    required(dtype, "dtype");
    required(shape, "shape");
    required(offsets, "data_offsets");
    return check();
  }

  private void once(Object seen, String field) {
    if (seen != null) {
      throw fail("header entry has \"" + field + "\" twice");
    }
  }

  private void required(Object value, String field) {
    if (value == null) {
      throw fail("header entry is missing \"" + field + "\"");
    }
  }

  private String readDtype(JsonParser p) throws IOException {
    if (p.currentToken() != JsonToken.VALUE_STRING) {
      throw fail("\"dtype\" must be a string, but is " + JsonPreview.describe(p));
    }
    SafetensorsDtype known = SafetensorsDtype.fromName(p.getText());
    // Share one string per known dtype instead of keeping a copy per tensor.
    return known != null ? known.name() : p.getText();
  }

  private long[] readShape(JsonParser p) throws IOException {
    if (p.currentToken() != JsonToken.START_ARRAY) {
      throw fail("\"shape\" must be an array of integers, but is " + JsonPreview.describe(p));
    }
    long[] dims = new long[4];
    int rank = 0;
    while (p.nextToken() != JsonToken.END_ARRAY) {
      if (rank == SafetensorsFile.MAX_RANK) {
        throw fail("\"shape\" has more than " + SafetensorsFile.MAX_RANK + " dimensions");
      }
      if (!isLong(p)) {
        throw fail("\"shape\"[" + rank + "] must be an integer, but is " + JsonPreview.describe(p));
      }
      if (rank == dims.length) {
        dims = Arrays.copyOf(dims, 2 * rank);
      }
      dims[rank++] = p.getLongValue();
    }
    return Arrays.copyOf(dims, rank);
  }

  /**
   * Reads up to three elements, so that a wrong count is reported (before any wrong element type,
   * with a short preview) without reading a long array into memory.
   */
  private long[] readOffsets(JsonParser p) throws IOException {
    String expected = "\"data_offsets\" must be an array of two integers [begin, end], but is ";
    if (p.currentToken() != JsonToken.START_ARRAY) {
      throw fail(expected + JsonPreview.describe(p));
    }
    long[] values = new long[2];
    String[] shown = new String[3]; // previews, for the elements that are not offsets
    int count = 0;
    while (p.nextToken() != JsonToken.END_ARRAY) {
      if (count == 3) {
        skipRest(p);
        break;
      }
      if (count < 2 && isLong(p) && p.getLongValue() >= 0) {
        values[count] = p.getLongValue();
      } else {
        shown[count] = JsonPreview.describe(p);
      }
      count++;
    }
    if (count != 2) {
      StringBuilder text = new StringBuilder();
      for (int i = 0; i < Math.min(count, 3); i++) {
        text.append(i == 0 ? "" : ",")
            .append(shown[i] == null ? Long.toString(values[i]) : JsonPreview.textOf(shown[i]));
      }
      throw fail(expected + "an array ([" + text + (count > 2 ? ",..." : "") + "])");
    }
    for (int i = 0; i < 2; i++) {
      if (shown[i] != null) {
        throw fail("\"data_offsets\"[" + i + "] must be a non-negative integer, but is "
            + shown[i]);
      }
    }
    return values;
  }

  /** Skips to the end of the array the parser is in. */
  private static void skipRest(JsonParser p) throws IOException {
    while (p.nextToken() != JsonToken.END_ARRAY) {
      p.skipChildren();
    }
  }

  private static boolean isLong(JsonParser p) throws IOException {
    return p.currentToken() == JsonToken.VALUE_NUMBER_INT
        && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER;
  }

  /** Checks that need the whole entry: sizes, and the byte range against the shape. */
  private Entry check() {
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw fail("\"shape\" " + shapeJson(shape) + " has negative dimension " + shape[i]
            + " at index " + i);
      }
    }
    long count = 1;
    for (long d : shape) {
      count = multiply(count, d);
    }
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end) {
      throw fail("data_offsets [" + begin + ", " + end + "] have begin > end");
    }
    if (end > dataLength) {
      throw fail("data_offsets [" + begin + ", " + end + "] are outside the data area, which is "
          + dataLength + " bytes");
    }
    SafetensorsDtype known = SafetensorsDtype.fromName(dtype);
    if (known != null) {
      long bits = multiply(count, known.bits());
      if (bits % 8 != 0) {
        throw fail("shape " + shapeJson(shape) + " of " + dtype
            + " is not a whole number of bytes");
      }
      long bytes = bits / 8;
      if (bytes != end - begin) {
        throw fail("size mismatch: shape " + shapeJson(shape) + " with dtype " + dtype + " needs "
            + bytes + " bytes, but data_offsets [" + begin + ", " + end + "] span " + (end - begin));
      }
    }
    return new Entry(name, dtype, shape, begin, end);
  }

  private long multiply(long a, long b) {
    try {
      return Math.multiplyExact(a, b);
    } catch (ArithmeticException e) {
      throw fail("shape " + shapeJson(shape) + " is too large (size overflows 64 bits)");
    }
  }

  /** The shape as compact JSON, as it appears in a header: {@code [2,3]}. */
  static String shapeJson(long[] shape) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) {
      sb.append(i == 0 ? "" : ",").append(shape[i]);
    }
    return sb.append(']').toString();
  }

  private SafetensorsException fail(String problem) {
    return new SafetensorsException(file, name, problem);
  }
}
