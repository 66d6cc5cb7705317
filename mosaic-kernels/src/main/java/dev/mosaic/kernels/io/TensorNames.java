package dev.mosaic.kernels.io;

import java.util.Collection;
import java.util.Locale;

/**
 * Tensor names as they appear in error messages: a file may hold a million of them and a name may
 * be megabytes long, so messages quote a few, each cut to a sane length, and count the rest.
 */
public final class TensorNames {
  /** How many names {@link #list(Collection)} shows. */
  public static final int SHOWN = 10;

  /** Names longer than this are cut by {@link #abbreviate}. */
  static final int MAX_NAME_CHARS = 120;

  private static final int KEPT_CHARS = 100;

  private TensorNames() {}

  /** {@code name}, or its first 100 characters and its length when it is over 120 characters. */
  public static String abbreviate(String name) {
    if (name == null || name.length() <= MAX_NAME_CHARS) {
      return name;
    }
    int cut = KEPT_CHARS;
    if (Character.isHighSurrogate(name.charAt(cut - 1))) {
      cut--; // never split a surrogate pair
    }
    return name.substring(0, cut) + "... (" + count(name.length()) + " chars)";
  }

  /**
   * At most {@value #SHOWN} names, abbreviated, as {@code [a, b, c]}, then {@code " and 1,234
   * more"} when there are more.
   */
  public static String list(Collection<String> names) {
    StringBuilder sb = new StringBuilder("[");
    int shown = 0;
    for (String n : names) {
      if (shown == SHOWN) {
        break;
      }
      sb.append(shown == 0 ? "" : ", ").append(abbreviate(n));
      shown++;
    }
    sb.append(']');
    if (names.size() > shown) {
      sb.append(" and ").append(count(names.size() - shown)).append(" more");
    }
    return sb.toString();
  }

  /** {@code n} with thousands separators, e.g. {@code 1,655,990}. */
  static String count(long n) {
    return String.format(Locale.ROOT, "%,d", n);
  }
}
