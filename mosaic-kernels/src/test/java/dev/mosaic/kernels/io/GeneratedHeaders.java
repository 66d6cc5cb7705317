package dev.mosaic.kernels.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes large safetensors headers straight to a file, so that tests can build 100 MB headers or
 * multi-gigabyte (sparse) files without holding them in memory.
 */
final class GeneratedHeaders {
  private GeneratedHeaders() {}

  /** Writes one part of a header to the stream. */
  @FunctionalInterface
  interface Body {
    void write(OutputStream out) throws IOException;
  }

  /**
   * A file whose header is {@code body}'s output, then {@code dataBytes} of data that are never
   * written (a sparse hole, read back as zeros). Returns the header length.
   */
  static long write(Path file, Body body, long dataBytes) throws IOException {
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
      out.write(new byte[8]); // length, patched below
      body.write(out);
    }
    long headerLen = Files.size(file) - 8;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerLen);
      ch.write(len.flip(), 0);
    }
    if (dataBytes > 0) {
      try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
        raf.setLength(8 + headerLen + dataBytes);
      }
    }
    return headerLen;
  }

  /**
   * {@code n} empty F32 tensors {@code t0000000, t0000001, ...} (about 60 bytes each), all at
   * offset 0: a valid header whose size is all entries.
   */
  static long tinyTensors(Path file, int n) throws IOException {
    return write(file, out -> {
      out.write('{');
      for (int i = 0; i < n; i++) {
        String num = Integer.toString(i);
        String e = (i == 0 ? "" : ",") + "\"t" + "0000000".substring(num.length()) + num
            + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
        out.write(e.getBytes(StandardCharsets.US_ASCII));
      }
      out.write('}');
    }, 0);
  }

  /** One F32 tensor {@code name} of {@code shape} whose data is a sparse hole. */
  static void sparseTensor(Path file, String name, long... shape) throws IOException {
    long bytes = Float.BYTES;
    StringBuilder dims = new StringBuilder();
    for (long d : shape) {
      bytes *= d;
      dims.append(dims.length() == 0 ? "" : ",").append(d);
    }
    String header = "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims
        + "],\"data_offsets\":[0," + bytes + "]}}";
    write(file, out -> out.write(header.getBytes(StandardCharsets.UTF_8)), bytes);
  }
}
