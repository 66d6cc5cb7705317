package dev.mosaic.kernels.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.Writer;

/**
 * Short descriptions of JSON values and parse errors for one-line messages, computed while
 * streaming: a value is shown as at most {@value #MAX_CHARS} characters of its compact JSON, even
 * when it is a 100 MB array (which is skipped over, never held).
 */
final class JsonPreview {
  static final int MAX_CHARS = 60;

  private static final int MAX_ERROR_CHARS = 300;
  private static final JsonFactory WRITER = new JsonFactory();

  private JsonPreview() {}

  /**
   * What the parser's current value is, e.g. {@code an array ([1,2])}; consumes it (the parser is
   * left on its last token, as {@link JsonParser#skipChildren()} would).
   */
  static String describe(JsonParser p) throws IOException {
    JsonToken t = p.currentToken();
    String kind;
    switch (t) {
      case START_ARRAY:
        kind = "an array";
        break;
      case START_OBJECT:
        kind = "an object";
        break;
      case VALUE_STRING:
        kind = "a string";
        break;
      case VALUE_NUMBER_INT:
        kind = "an integer";
        break;
      case VALUE_NUMBER_FLOAT:
        kind = "a non-integer number";
        break;
      case VALUE_TRUE:
      case VALUE_FALSE:
        kind = "a boolean";
        break;
      case VALUE_NULL:
        return "null";
      default:
        kind = String.valueOf(t).toLowerCase(java.util.Locale.ROOT);
    }
    return kind + " (" + text(p) + ")";
  }

  /** The JSON text inside a {@link #describe} result: {@code 1.5} of {@code a non-integer ...}. */
  static String textOf(String described) {
    int open = described.indexOf(" (");
    return open < 0 ? described : described.substring(open + 2, described.length() - 1);
  }

  /** The current value as compact JSON, cut to {@value #MAX_CHARS} characters ("..." if cut). */
  private static String text(JsonParser p) throws IOException {
    BoundedWriter out = new BoundedWriter(MAX_CHARS);
    try (JsonGenerator g = WRITER.createGenerator(out)) {
      g.copyCurrentStructureExact(p);
    }
    return out.text();
  }

  /** Jackson's message without its multi-line "[Source: ...]" suffix, plus where it happened. */
  static String error(IOException e) {
    String msg;
    if (e instanceof JsonProcessingException) {
      JsonProcessingException jpe = (JsonProcessingException) e;
      msg = oneLine(jpe.getOriginalMessage());
      JsonLocation loc = jpe.getLocation();
      if (loc != null && loc.getLineNr() > 0) {
        msg = cut(msg) + " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")";
      }
    } else {
      msg = oneLine(String.valueOf(e.getMessage()));
    }
    return cut(msg);
  }

  /** " (line L, column C)" of where the parser is, for errors this reader finds itself. */
  static String where(JsonParser p) {
    JsonLocation loc = p.currentTokenLocation();
    return loc.getLineNr() > 0
        ? " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")"
        : "";
  }

  private static String cut(String s) {
    return s.length() <= MAX_ERROR_CHARS ? s : s.substring(0, MAX_ERROR_CHARS - 3) + "...";
  }

  private static String oneLine(String s) {
    if (s == null) {
      return "";
    }
    return s.replaceAll("\\s*\\R\\s*", " ").trim();
  }

  /** Keeps the first {@code limit} characters written and drops the rest, noting that it did. */
  private static final class BoundedWriter extends Writer {
    private final StringBuilder kept = new StringBuilder();
    private final int limit;
    private boolean cut;

    BoundedWriter(int limit) {
      this.limit = limit;
    }

    @Override
    public void write(char[] cbuf, int off, int len) {
      int room = limit - kept.length();
      if (len > room) {
        cut = true;
      }
      kept.append(cbuf, off, Math.max(0, Math.min(len, room)));
    }

    String text() {
      return cut ? kept.substring(0, limit - 3) + "..." : kept.toString();
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  }
}
