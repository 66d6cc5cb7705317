package dev.mosaic.spark.cli;

import java.util.Collection;
import java.util.Optional;

/** The known name closest to a mistyped one, for "did you mean ...?" hints. */
final class DidYouMean {
  private DidYouMean() {}

  /**
   * A name that contains the typed one or is contained in it (shortest length difference first:
   * {@code --heads} → {@code --num-heads}, {@code --bogus-master} → {@code --master}), else the
   * nearest by edit distance when it is close enough to be a typo; empty when nothing is.
   */
  static Optional<String> closest(String typed, Collection<String> known) {
    String best = null;
    int bestScore = Integer.MAX_VALUE;
    for (String k : known) {
      boolean nested = Math.min(k.length(), typed.length()) >= 3
          && (k.contains(typed) || typed.contains(k));
      if (nested && Math.abs(k.length() - typed.length()) < bestScore) {
        best = k;
        bestScore = Math.abs(k.length() - typed.length());
      }
    }
    if (best != null) {
      return Optional.of(best);
    }
    int limit = Math.max(1, typed.length() / 3);
    for (String k : known) {
      int d = editDistance(typed, k);
      if (d <= limit && d < bestScore) {
        best = k;
        bestScore = d;
      }
    }
    return Optional.ofNullable(best);
  }

  /**
   * Edit distance where an insertion, a deletion, a substitution and a swap of two neighbouring
   * characters each cost 1 (optimal string alignment), so {@code --ps} is one step from
   * {@code --sp}.
   */
  static int editDistance(String a, String b) {
    int[][] d = new int[a.length() + 1][b.length() + 1];
    for (int i = 0; i <= a.length(); i++) {
      d[i][0] = i;
    }
    for (int j = 0; j <= b.length(); j++) {
      d[0][j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        d[i][j] = Math.min(d[i - 1][j - 1] + cost, Math.min(d[i - 1][j], d[i][j - 1]) + 1);
        if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2)
            && a.charAt(i - 2) == b.charAt(j - 1)) {
          d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
        }
      }
    }
    return d[a.length()][b.length()];
  }
}
