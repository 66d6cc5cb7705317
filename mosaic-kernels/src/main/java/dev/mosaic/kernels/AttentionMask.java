package dev.mosaic.kernels;

/**
 * Which keys a query may see, in global sequence positions so that a block pair of a sharded
 * sequence knows where it sits. Query row {@code i} of a block is global position
 * {@code queryOffset + i}, key row {@code j} is {@code keyOffset + j}. A key is masked when
 * {@code causal} and its position is after the query's, or when its position is
 * {@code >= keyLimit} (padded shards; TabPFN's "rows attend only to the training rows").
 */
public record AttentionMask(boolean causal, long queryOffset, long keyOffset, long keyLimit) {

  /** Every query sees every key. */
  public static final AttentionMask NONE = new AttentionMask(false, 0, 0, Long.MAX_VALUE);

  public AttentionMask {
    if (keyLimit < 0) {
      throw new IllegalArgumentException("keyLimit must be >= 0, got " + keyLimit);
    }
  }

  public static AttentionMask causalMask() {
    return new AttentionMask(true, 0, 0, Long.MAX_VALUE);
  }

  public static AttentionMask keyLimit(long limit) {
    return new AttentionMask(false, 0, 0, limit);
  }

  /** The same rules for a block pair whose first query/key sit at these global positions. */
  public AttentionMask at(long queryOffset, long keyOffset) {
    return new AttentionMask(causal, queryOffset, keyOffset, keyLimit);
  }

  public boolean masks(long queryRow, long keyRow) {
    long q = queryOffset + queryRow;
    long k = keyOffset + keyRow;
    return k >= keyLimit || (causal && k > q);
  }

  /**
   * Keys {@code [0, result)} of the block may be visible to some query in rows
   * {@code [qFrom, qTo)}; keys from the result on are masked for all of them.
   */
  public int visibleKeyEnd(int qFrom, int qTo, int keys) {
    long end = keys;
    end = Math.min(end, keyLimit - keyOffset);
    if (causal) {
      end = Math.min(end, queryOffset + qTo - 1 - keyOffset + 1);
    }
    return (int) Math.max(0, Math.min(keys, end));
  }

  /** True when no key in {@code [kFrom, kTo)} is masked for any query in {@code [qFrom, qTo)}. */
  public boolean fullyVisible(int qFrom, int qTo, int kFrom, int kTo) {
    if (keyOffset + kTo > keyLimit) {
      return false;
    }
    return !causal || keyOffset + kTo - 1 <= queryOffset + qFrom;
  }

  public boolean isNone() {
    return !causal && keyLimit == Long.MAX_VALUE;
  }
}
