package dev.mosaic.kernels.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonStreamContext;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import dev.mosaic.kernels.io.SafetensorsFile.Entry;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses a safetensors header, the JSON object of tensor entries and {@code __metadata__}, as a
 * token stream: memory grows with what is kept (one small {@link Entry} per tensor), never with a
 * tree of the whole document, and the counts of tensors and metadata keys are capped.
 * Duplicate keys are errors at every level this reader interprets; values of unknown fields are
 * skipped unread.
 */
final class HeaderJson {
  /** Tensor entries in header order, and the metadata. */
  record Parsed(List<Entry> entries, Map<String, String> metadata) {}

  private static final JsonFactory FACTORY =
      JsonFactory.builder()
          .streamReadConstraints(
              StreamReadConstraints.builder()
                  .maxStringLength(Integer.MAX_VALUE)
                  .maxNameLength(Integer.MAX_VALUE)
                  .maxNumberLength(1000)
                  .build())
          .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
          // Names are tensor names, nearly all distinct: interning them would only grow a table.
          .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
          .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
          .build();

  private final Path file;
  private final long dataLength;

  private HeaderJson(Path file, long dataLength) {
    this.file = file;
    this.dataLength = dataLength;
  }

  /**
   * Parses the header text from {@code text} (which decodes UTF-8 strictly); {@code dataLength}
   * bounds the tensors' byte ranges.
   */
  static Parsed parse(Path file, Reader text, long dataLength) {
    try (JsonParser p = FACTORY.createParser(text)) {
      return new HeaderJson(file, dataLength).root(p);
    } catch (CharacterCodingException e) {
      throw new SafetensorsException(file, null, "header is not valid UTF-8", e);
    } catch (IOException e) {
      throw new SafetensorsException(file, null, "header is not valid JSON: "
          + JsonPreview.error(e), e);
    }
  }

  private Parsed root(JsonParser p) throws IOException {
    JsonToken t = p.nextToken();
    if (t == null) {
      throw fail("header is not valid JSON: it is empty");
    }
    if (t != JsonToken.START_OBJECT) {
      throw fail("header must be a JSON object, but is " + JsonPreview.describe(p));
    }
    JsonStreamContext top = p.getParsingContext();
    Set<String> names = new HashSet<>();
    List<Entry> entries = new ArrayList<>();
    Map<String, String> metadata = Map.of();
    // The first wrong entry is reported only once the whole header has parsed: a header that is
    // not JSON says so, whatever its entries hold. Past it, values are only skipped (not kept).
    SafetensorsException wrong = null;
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String key = p.currentName();
      p.nextToken();
      if (wrong != null) {
        p.skipChildren();
        continue;
      }
      if (!names.add(key)) {
        throw fail("header is not valid JSON: Duplicate field '" + TensorNames.abbreviate(key)
            + "'" + JsonPreview.where(p));
      }
      try {
        if (key.equals(SafetensorsFile.METADATA_KEY)) {
          metadata = metadata(p);
        } else if (entries.size() == SafetensorsFile.MAX_TENSORS) {
          throw fail("header has more than " + TensorNames.count(SafetensorsFile.MAX_TENSORS)
              + " tensors, the most this reader accepts");
        } else {
          entries.add(EntryJson.read(p, file, key, dataLength));
        }
      } catch (SafetensorsException e) {
        wrong = e;
        names = null; // free them: only syntax is checked from here on
        skipOutTo(p, top);
      }
    }
    if (p.nextToken() != null) {
      throw fail("header is not valid JSON: unexpected " + p.currentToken()
          + " after the object" + JsonPreview.where(p));
    }
    if (wrong != null) {
      throw wrong;
    }
    return new Parsed(entries, metadata);
  }

  /** Advances until the parser is back in {@code context}, past the value it was inside. */
  private static void skipOutTo(JsonParser p, JsonStreamContext context) throws IOException {
    while (p.getParsingContext() != context) {
      if (p.nextToken() == null) {
        return; // truncated: the caller's next read reports it
      }
    }
  }

  private Map<String, String> metadata(JsonParser p) throws IOException {
    String key = SafetensorsFile.METADATA_KEY;
    if (p.currentToken() != JsonToken.START_OBJECT) {
      throw fail(key + " must be an object of strings, but is " + JsonPreview.describe(p));
    }
    Map<String, String> out = new LinkedHashMap<>();
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String k = p.currentName();
      p.nextToken();
      if (p.currentToken() != JsonToken.VALUE_STRING) {
        throw fail(key + " value for key '" + TensorNames.abbreviate(k)
            + "' must be a string, but is " + JsonPreview.describe(p));
      }
      if (out.size() == SafetensorsFile.MAX_METADATA_KEYS) {
        throw fail(key + " has more than " + TensorNames.count(SafetensorsFile.MAX_METADATA_KEYS)
            + " keys, the most this reader accepts");
      }
      if (out.putIfAbsent(k, p.getText()) != null) {
        throw fail(key + " has key '" + TensorNames.abbreviate(k) + "' twice");
      }
    }
    return Collections.unmodifiableMap(out);
  }

  private SafetensorsException duplicate(JsonParser p, String key) {
    return fail("header is not valid JSON: Duplicate field '" + TensorNames.abbreviate(key) + "'"
        + JsonPreview.where(p));
  }

  private SafetensorsException fail(String problem) {
    return new SafetensorsException(file, null, problem);
  }
}
