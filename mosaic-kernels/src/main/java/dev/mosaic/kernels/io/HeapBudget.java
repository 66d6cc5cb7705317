package dev.mosaic.kernels.io;

import dev.mosaic.kernels.io.SafetensorsFile.Entry;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * Whether float32 arrays of a given size can be had from this JVM's heap, and the one-line error
 * when not, so that a tensor too large for {@code -Xmx} ends in advice instead of an {@link
 * OutOfMemoryError} stack trace.
 *
 * <p>Only sizes that can never fit ({@code > Runtime.maxMemory()}, or more elements than a Java
 * array holds) are refused up front. A size below that is attempted: the heap in use counts
 * garbage not yet collected, so refusing on "max minus used" would turn down tensors that fit
 * after a collection. If the allocation does fail (the JVM collects before it gives up), the {@link
 * OutOfMemoryError} becomes the same one-line error.
 */
final class HeapBudget {
  /** Largest element count a Java float[] can hold (what {@code Tensor} allows). */
  static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

  private HeapBudget() {}

  /**
   * Fails when the float[] for tensor {@code e} can never be had: more elements than an array
   * holds, or more bytes than {@code -Xmx}.
   */
  static void check(Path file, Entry e) {
    long elements = e.numElements();
    if (elements > MAX_ELEMENTS) {
      throw new SafetensorsException(file, e.name(), what(e) + " has " + TensorNames.count(elements)
          + " elements, more than a Java float[] can hold (" + TensorNames.count(MAX_ELEMENTS)
          + ")");
    }
    long bytes = elements * Float.BYTES;
    if (bytes > Runtime.getRuntime().maxMemory()) {
      throw tooLarge(file, e, bytes, null);
    }
  }

  /** A float[] of {@code elements}, after {@link #check}; a failed allocation is that error too. */
  static float[] allocate(Path file, Entry e) {
    check(file, e);
    try {
      return new float[(int) e.numElements()];
    } catch (OutOfMemoryError oom) {
      throw tooLarge(file, e, e.numElements() * Float.BYTES, oom);
    }
  }

  /** Fails before reading anything when {@code bytes} of float32 in total can never fit. */
  static void checkTotal(Path file, int tensors, long bytes) {
    if (bytes > Runtime.getRuntime().maxMemory()) {
      throw new SafetensorsException(file, null, "the " + TensorNames.count(tensors)
          + " tensors need " + size(bytes) + " as float32 together, more than the heap can give "
          + heap() + advice());
    }
  }

  private static SafetensorsException tooLarge(Path file, Entry e, long bytes,
      OutOfMemoryError cause) {
    return new SafetensorsException(file, e.name(), "too large for the heap: " + what(e) + " is "
        + size(bytes) + " as float32, more than the heap can give " + heap() + advice(), cause);
  }

  /** "F32 [40000, 15000]" */
  private static String what(Entry e) {
    return e.dtype() + " " + Arrays.toString(e.shape());
  }

  /** "(-Xmx 1.0 GiB, about 0.8 GiB free)". */
  private static String heap() {
    Runtime rt = Runtime.getRuntime();
    long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    return "(-Xmx " + size(rt.maxMemory()) + ", about " + size(free) + " free)";
  }

  private static String advice() {
    return "; set MOSAIC_HEAP (bin/mosaic) or -Xmx";
  }

  /** Bytes in binary units with one decimal, e.g. {@code 2.2 GiB}, {@code 64.0 MiB}. */
  static String size(long bytes) {
    String[] units = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? bytes + " bytes" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }
}
