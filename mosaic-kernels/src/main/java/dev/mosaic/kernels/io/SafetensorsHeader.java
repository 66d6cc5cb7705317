package dev.mosaic.kernels.io;

import dev.mosaic.kernels.io.SafetensorsFile.Entry;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

/**
 * The validated header of an open safetensors file: where the data area is, each tensor's entry
 * (in data-offset order) and the metadata. Reading it streams the header bytes from the file
 * through a strict UTF-8 decoder into {@link HeaderJson}; the header is never held as a whole.
 */
record SafetensorsHeader(long dataStart, long dataLength, Map<String, Entry> entries,
    Map<String, String> metadata) {

  /** Reads and validates the header of {@code ch}; any problem is a {@link SafetensorsException}. */
  static SafetensorsHeader read(Path file, FileChannel ch) throws IOException {
    long fileSize = ch.size();
    if (fileSize < 8) {
      throw new SafetensorsException(file, null, "file is " + fileSize
          + " bytes, too short for the 8-byte header length");
    }
    long headerLen = headerLength(file, ch);
    if (Long.compareUnsigned(headerLen, SafetensorsFile.MAX_HEADER_BYTES) > 0) {
      throw new SafetensorsException(file, null, "header length "
          + Long.toUnsignedString(headerLen) + " bytes exceeds the limit of "
          + SafetensorsFile.MAX_HEADER_BYTES + " bytes");
    }
    if (headerLen > fileSize - 8) {
      throw new SafetensorsException(file, null, "header length " + headerLen
          + " bytes is larger than the file allows (file is " + fileSize + " bytes, so at most "
          + (fileSize - 8) + ")");
    }
    long dataStart = 8 + headerLen;
    long dataLength = fileSize - dataStart;
    HeaderJson.Parsed parsed = HeaderJson.parse(file, utf8(ch, 8, dataStart), dataLength);
    Map<String, Entry> entries = DataLayout.index(file, parsed.entries(), dataLength);
    return new SafetensorsHeader(dataStart, dataLength, entries, parsed.metadata());
  }

  /** The first 8 bytes: the header length, little-endian, unsigned. */
  private static long headerLength(Path file, FileChannel ch) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    long pos = 0;
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new SafetensorsException(file, null, "unexpected end of file at byte " + pos
            + " (was it truncated?)");
      }
      pos += n;
    }
    return buf.getLong(0);
  }

  /** Bytes {@code [from, to)} decoded as UTF-8, failing on malformed input instead of replacing. */
  private static Reader utf8(FileChannel ch, long from, long to) {
    return new InputStreamReader(new ChannelInputStream(ch, from, to),
        StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT));
  }
}
