package dev.mosaic.kernels.io;

import dev.mosaic.kernels.io.SafetensorsFile.Entry;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Checks that the tensors' byte ranges tile the data area exactly, as the reference
 * implementation requires: sorted by offset, each starts where the previous one ended, the first at
 * 0, the last at the end of the file; no overlaps, no unindexed bytes.
 */
final class DataLayout {
  private DataLayout() {}

  /**
   * The entries by name in data-offset order (unmodifiable). Sorts {@code entries} in place; ties
   * keep header order, and a zero-size tensor sorts before one that starts at the same offset.
   */
  static Map<String, Entry> index(Path file, List<Entry> entries, long dataLength) {
    entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long covered = 0;
    Entry prev = null;
    for (Entry e : entries) {
      if (e.begin() < covered) {
        throw new SafetensorsException(file, e.name(), "data_offsets [" + e.begin() + ", "
            + e.end() + "] overlap tensor '" + TensorNames.abbreviate(prev.name()) + "' at ["
            + prev.begin() + ", " + prev.end() + "]");
      }
      if (e.begin() > covered) {
        throw new SafetensorsException(file, e.name(), "gap: data bytes [" + covered + ", "
            + e.begin() + ") before this tensor are not covered by any tensor (the data area must"
            + " be fully indexed)");
      }
      covered = e.end();
      prev = e;
    }
    if (covered != dataLength) {
      throw new SafetensorsException(file, null, "data area is " + dataLength
          + " bytes but the tensors cover only " + covered + " (bytes [" + covered + ", "
          + dataLength + ") are not covered by any tensor; the data area must be fully indexed)");
    }
    Map<String, Entry> byName = new LinkedHashMap<>(entries.size() * 4 / 3 + 1);
    for (Entry e : entries) {
      byName.put(e.name(), e);
    }
    return Collections.unmodifiableMap(byName);
  }
}
