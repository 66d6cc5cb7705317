package dev.mosaic.spark.comm;

import java.util.Locale;

/** Small text helpers for error messages that must stay one line and bounded. */
final class Messages {

  private Messages() {}

  /** Control characters (newlines included) become spaces; longer text is cut with "...". */
  static String oneLine(String text, int maxChars) {
    String line = String.valueOf(text).replaceAll("\\p{Cntrl}", " ");
    return line.length() <= maxChars ? line : line.substring(0, maxChars - 3) + "...";
  }

  /** "512 bytes", "3.9 KiB", "1.5 GiB". */
  static String bytes(long n) {
    if (n < 1024) {
      return n + (n == 1 ? " byte" : " bytes");
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = n;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }
}
