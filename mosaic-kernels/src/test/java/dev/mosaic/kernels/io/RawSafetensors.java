package dev.mosaic.kernels.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.function.Executable;

/** Writes safetensors files byte by byte, independently of {@link Safetensors#write}. */
final class RawSafetensors {
  private RawSafetensors() {}

  /** 8-byte LE length of the header, the header (UTF-8), then {@code data}. */
  static Path write(Path file, String header, byte[] data) throws IOException {
    return write(file, header.getBytes(StandardCharsets.UTF_8), data);
  }

  static Path write(Path file, byte[] header, byte[] data) throws IOException {
    return writeWithLength(file, header.length, header, data);
  }

  /** Like {@link #write} but with an arbitrary (possibly lying) header length field. */
  static Path writeWithLength(Path file, long headerLen, byte[] header, byte[] data)
      throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(le64(headerLen));
    out.write(header);
    out.write(data);
    Files.write(file, out.toByteArray());
    return file;
  }

  static byte[] le64(long v) {
    return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
  }

  static byte[] f32(float... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float x : v) {
      b.putFloat(x);
    }
    return b.array();
  }

  static byte[] f64(double... v) {
    ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (double x : v) {
      b.putDouble(x);
    }
    return b.array();
  }

  static byte[] u16(int... v) {
    ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int x : v) {
      b.putShort((short) x);
    }
    return b.array();
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  /**
   * Runs {@code call}, expects a {@link SafetensorsException} whose one-line message names the file
   * (and {@code tensor} when not null) and contains every fragment.
   */
  static SafetensorsException assertFails(
      Path file, String tensor, Executable call, String... fragments) {
    SafetensorsException e = assertThrows(SafetensorsException.class, call);
    String msg = e.getMessage();
    assertTrue(msg.contains(file.toString()), () -> "message does not name the file: " + msg);
    assertEquals(file, e.file());
    if (tensor != null) {
      assertTrue(msg.contains("'" + tensor + "'"), () -> "message does not name " + tensor + ": " + msg);
      assertEquals(tensor, e.tensor());
    }
    for (String f : fragments) {
      assertTrue(msg.contains(f), () -> "message lacks \"" + f + "\": " + msg);
    }
    assertTrue(!msg.contains("\n"), () -> "message is not one line: " + msg);
    return e;
  }
}
