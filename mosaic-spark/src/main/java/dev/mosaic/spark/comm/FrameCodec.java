package dev.mosaic.spark.comm;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;

/**
 * Reads and writes frames on a blocking channel. Wire format, all little-endian:
 *
 * <pre>
 *   int  magic          0x3146534D ("MSF1"), catches a desynchronised stream early
 *   long channel        communicator id (0 = root, split children hash their path)
 *   long seq            per (channel, direction, peer) message counter
 *   long payloadBytes   multiple of 4
 *   payloadBytes of float32
 * </pre>
 *
 * A frame with magic 0x3142534D ("MSB1") carries its payload in bfloat16 instead ({@link
 * WireDtype#BF16}: payloadBytes a multiple of 2, each element the top half of the float's bits,
 * rounded to nearest even on send and widened exactly on receive). The sender chooses per frame;
 * the receiver learns it from the magic, so a posted receive never needs to know.
 *
 * An abort notice (handshake version 2) has the same header with magic 0x3141534D ("MSA1"),
 * channel and seq 0, and at most {@link #MAX_ABORT_BYTES} bytes of UTF-8 text: why the sending
 * rank gave up. It is the last thing a rank writes on the connection before closing it. Every
 * announced length is checked before anything is allocated for it.
 *
 * Payloads go through one direct staging buffer per instance with bulk FloatBuffer copies, so a
 * float[] is moved with memcpy-like speed and never float by float. One instance per direction of
 * a connection; not thread-safe.
 */
final class FrameCodec {

  static final int MAGIC = 0x3146534D;
  static final int BF16_MAGIC = 0x3142534D;
  static final int ABORT_MAGIC = 0x3141534D;
  /** Longest abort reason on the wire; longer reasons are cut before sending. */
  static final int MAX_ABORT_BYTES = 1024;
  static final int HEADER_BYTES = 4 + 8 + 8 + 8;
  /** Staging chunk: large enough to amortise syscalls, small enough to keep per-peer memory low. */
  static final int CHUNK_BYTES = 256 * 1024;
  /** Largest float[] the JVM can allocate; a frame must fit one. */
  private static final long MAX_ARRAY_FLOATS = Integer.MAX_VALUE - 8;

  private final ByteBuffer header =
      ByteBuffer.allocateDirect(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private final ByteBuffer chunk =
      ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);

  /** Writes header and payload {@code data[off, off+len)}; header and first chunk in one call. */
  void writeFrame(GatheringByteChannel ch, FrameKey key, float[] data, int off, int len)
      throws IOException {
    writeFrame(ch, key, data, off, len, WireDtype.FP32);
  }

  /** As above with the payload in {@code wire} (bf16: rounded to nearest even, half the bytes). */
  void writeFrame(GatheringByteChannel ch, FrameKey key, float[] data, int off, int len,
      WireDtype wire) throws IOException {
    fillHeader(key, (long) len * wire.bytes());
    if (wire == WireDtype.BF16) {
      header.putInt(0, BF16_MAGIC);
    }
    int done = fillChunk(data, off, len, wire);
    ByteBuffer[] both = {header, chunk};
    while (header.hasRemaining() || chunk.hasRemaining()) {
      ch.write(both);
    }
    while (done < len) {
      done += fillChunk(data, off + done, len - done, wire);
      while (chunk.hasRemaining()) {
        ch.write(chunk);
      }
    }
  }

  /** Writes a header only; tests use it to forge bad frames. */
  void writeHeader(GatheringByteChannel ch, FrameKey key, long payloadBytes) throws IOException {
    fillHeader(key, payloadBytes);
    while (header.hasRemaining()) {
      ch.write(header);
    }
  }

  /**
   * Reads and validates the next header. Returns null if the peer closed the connection cleanly
   * between frames. The announced length is checked against {@code maxFrameBytes} here, before
   * anyone allocates for it.
   */
  FrameHeader readHeader(ReadableByteChannel ch, long maxFrameBytes, String peer)
      throws IOException {
    header.clear();
    if (!readFully(ch, header, true)) {
      return null;
    }
    header.flip();
    int magic = header.getInt();
    FrameKey key = new FrameKey(header.getLong(), header.getLong());
    long bytes = header.getLong();
    if (magic == ABORT_MAGIC) {
      if (bytes < 0 || bytes > MAX_ABORT_BYTES) {
        throw new CommException(String.format("corrupt stream from %s: abort notice announces"
            + " %d bytes, at most %d allowed", peer, bytes, MAX_ABORT_BYTES));
      }
      return new FrameHeader(key, bytes, true, WireDtype.FP32);
    }
    if (magic != MAGIC && magic != BF16_MAGIC) {
      throw new CommException(String.format("corrupt stream from %s: frame magic 0x%08X,"
          + " expected 0x%08X (fp32) or 0x%08X (bf16)", peer, magic, MAGIC, BF16_MAGIC));
    }
    WireDtype wire = magic == BF16_MAGIC ? WireDtype.BF16 : WireDtype.FP32;
    if (bytes < 0 || bytes > maxFrameBytes) {
      throw new CommException(String.format(
          "frame from %s (%s) announces %d payload bytes, above maxFrameBytes %d; rejected",
          peer, key, bytes, maxFrameBytes));
    }
    if (bytes % wire.bytes() != 0 || bytes / wire.bytes() > MAX_ARRAY_FLOATS) {
      throw new CommException(String.format(
          "frame from %s (%s) announces %d payload bytes, not a valid %s array length",
          peer, key, bytes, wire.label()));
    }
    return new FrameHeader(key, bytes, false, wire);
  }

  /**
   * Writes an abort notice carrying {@code reason} (one line, cut to {@link #MAX_ABORT_BYTES}
   * bytes of UTF-8). Only between frames: the peer reads it where it expects a header.
   */
  void writeAbort(GatheringByteChannel ch, String reason) throws IOException {
    byte[] text = Messages.oneLine(reason, MAX_ABORT_BYTES).getBytes(StandardCharsets.UTF_8);
    int n = Math.min(text.length, MAX_ABORT_BYTES); // a cut multi-byte character decodes as '?'
    fillHeader(new FrameKey(ChannelIds.ROOT, 0), n);
    header.putInt(0, ABORT_MAGIC);
    ByteBuffer[] both = {header, ByteBuffer.wrap(text, 0, n)};
    while (both[0].hasRemaining() || both[1].hasRemaining()) {
      ch.write(both);
    }
  }

  /** Reads the reason of an abort notice whose header was just read; one line, bounded. */
  String readAbortReason(ReadableByteChannel ch, FrameHeader abort) throws IOException {
    ByteBuffer text = ByteBuffer.allocate((int) abort.payloadBytes()); // <= MAX_ABORT_BYTES
    readFully(ch, text, false);
    return Messages.oneLine(new String(text.array(), StandardCharsets.UTF_8), MAX_ABORT_BYTES);
  }

  /** Reads {@code floats} fp32 payload elements into {@code dst[off, ...)}. */
  void readPayload(ReadableByteChannel ch, float[] dst, int off, int floats) throws IOException {
    readPayload(ch, dst, off, floats, WireDtype.FP32);
  }

  /** Reads {@code floats} payload elements sent as {@code wire}, widened to fp32, into dst. */
  void readPayload(ReadableByteChannel ch, float[] dst, int off, int floats, WireDtype wire)
      throws IOException {
    int perChunk = CHUNK_BYTES / wire.bytes();
    int done = 0;
    while (done < floats) {
      int n = Math.min(floats - done, perChunk);
      chunk.clear().limit(n * wire.bytes());
      readFully(ch, chunk, false);
      chunk.flip();
      if (wire == WireDtype.FP32) {
        chunk.asFloatBuffer().get(dst, off + done, n);
      } else {
        int base = off + done;
        for (int i = 0; i < n; i++) {
          dst[base + i] = WireDtype.fromBf16(chunk.getShort(2 * i));
        }
      }
      done += n;
    }
  }

  /** Consumes a payload nobody can take (wrong length), keeping the stream in step. */
  void skipPayload(ReadableByteChannel ch, long bytes) throws IOException {
    long left = bytes;
    while (left > 0) {
      chunk.clear().limit((int) Math.min(left, CHUNK_BYTES));
      readFully(ch, chunk, false);
      left -= chunk.limit();
    }
  }

  private void fillHeader(FrameKey key, long payloadBytes) {
    header.clear();
    header.putInt(MAGIC).putLong(key.channel()).putLong(key.seq()).putLong(payloadBytes);
    header.flip();
  }

  /** Stages up to one chunk of {@code data[off, off+left)}; returns how many floats it took. */
  private int fillChunk(float[] data, int off, int left, WireDtype wire) {
    int n = Math.min(left, CHUNK_BYTES / wire.bytes());
    chunk.clear();
    if (wire == WireDtype.FP32) {
      chunk.asFloatBuffer().put(data, off, n);
    } else {
      for (int i = 0; i < n; i++) {
        chunk.putShort(2 * i, WireDtype.toBf16(data[off + i]));
      }
    }
    chunk.limit(n * wire.bytes());
    return n;
  }

  /**
   * Fills {@code buf}; returns false on EOF before the first byte if {@code eofOk}, otherwise an
   * EOF is an {@link EOFException} (the peer vanished mid-frame).
   */
  private static boolean readFully(ReadableByteChannel ch, ByteBuffer buf, boolean eofOk)
      throws IOException {
    int start = buf.position();
    while (buf.hasRemaining()) {
      if (ch.read(buf) < 0) {
        if (eofOk && buf.position() == start) {
          return false;
        }
        throw new EOFException("the peer closed the connection mid-frame (a read of "
            + (buf.limit() - start) + " bytes got " + (buf.position() - start) + ")");
      }
    }
    return true;
  }
}
