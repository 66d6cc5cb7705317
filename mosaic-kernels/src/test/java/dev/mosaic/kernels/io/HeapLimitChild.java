package dev.mosaic.kernels.io;

import java.nio.file.Path;

/**
 * Run in a child JVM with a small {@code -Xmx} by {@link SafetensorsHeapTest}: holds {@code
 * ballastMiB} of live data, then reads tensor {@code name}, which fits {@code -Xmx} but not the room
 * the ballast leaves, so the allocation itself fails. Prints the error's message and cause, then
 * shows that the JVM still works by reading {@code small}.
 */
public final class HeapLimitChild {
  private HeapLimitChild() {}

  public static void main(String[] args) {
    Path file = Path.of(args[0]);
    byte[] ballast = new byte[Integer.parseInt(args[1]) << 20];
    try {
      Safetensors.read(file, args[2]);
      System.out.println("READ");
    } catch (SafetensorsException e) {
      System.out.println("MESSAGE " + e.getMessage());
      System.out.println("CAUSE " + (e.getCause() == null ? null : e.getCause().getClass().getName()));
    }
    System.out.println("BALLAST " + ballast.length);
    System.out.println("SMALL " + Safetensors.read(Path.of(args[3]), "small").data()[0]);
  }
}
