package dev.mosaic.kernels.io;

import dev.mosaic.kernels.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

/**
 * Run in a child JVM with a small {@code -Xmx} by {@link SafetensorsLargeTensorTest}: writes a
 * file holding one big F32 tensor without ever holding it in memory, then reads it back with
 * {@link Safetensors}. Prints {@code OK} on success.
 */
public final class LargeTensorChild {
  private LargeTensorChild() {}

  static float value(long i) {
    return (float) (i % 1009) - 500.5f;
  }

  public static void main(String[] args) throws Exception {
    Path file = Path.of(args[0]);
    int n = Integer.parseInt(args[1]);
    String json =
        "{\"big\":{\"dtype\":\"F32\",\"shape\":[" + n + "],\"data_offsets\":[0," + 4L * n + "]}}";
    byte[] header = json.getBytes(StandardCharsets.UTF_8);
    try (FileChannel ch =
        FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
      head.putLong(header.length).put(header).flip();
      while (head.hasRemaining()) {
        ch.write(head);
      }
      ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      long i = 0;
      while (i < n) {
        buf.clear();
        while (buf.remaining() >= 4 && i < n) {
          buf.putFloat(value(i++));
        }
        buf.flip();
        while (buf.hasRemaining()) {
          ch.write(buf);
        }
      }
    }
    long maxHeap = Runtime.getRuntime().maxMemory();
    Tensor one = Safetensors.read(file, "big");
    check(one, n);
    one = null;
    Map<String, Tensor> all = Safetensors.read(file);
    check(all.get("big"), n);
    System.out.println("OK maxHeap=" + maxHeap + " tensorBytes=" + 4L * n);
  }

  private static void check(Tensor t, int n) {
    float[] d = t.data();
    if (d.length != n) {
      throw new AssertionError("length " + d.length);
    }
    for (int i = 0; i < n; i += 9973) {
      if (d[i] != value(i)) {
        throw new AssertionError("element " + i + ": " + d[i] + " != " + value(i));
      }
    }
    if (d[n - 1] != value(n - 1)) {
      throw new AssertionError("last element");
    }
  }
}
