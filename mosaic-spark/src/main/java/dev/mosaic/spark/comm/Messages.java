package dev.mosaic.spark.comm;

/** Small text helpers for error messages that must stay one line and bounded. */
final class Messages {

  private Messages() {}

  /** Control characters (newlines included) become spaces; longer text is cut with "...". */
  static String oneLine(String text, int maxChars) {
    String line = String.valueOf(text).replaceAll("\\p{Cntrl}", " ");
    return line.length() <= maxChars ? line : line.substring(0, maxChars - 3) + "...";
  }
}
