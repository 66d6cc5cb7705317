package dev.mosaic.kernels;

import java.util.Arrays;

/**
 * Where the sequences of a packed (varlen) batch sit, cu_seqlens style: sequence {@code s} owns
 * query rows {@code [cuQ[s], cuQ[s+1])} and key/value rows {@code [cuK[s], cuK[s+1])} of one
 * buffer, and no row of another sequence is ever computed against it. {@code validKeys[s]}
 * (optional) hides the sequence's key rows from that count on (key padding). Self-attention uses
 * the same offsets for queries and keys ({@link #of}).
 */
public record VarlenSequences(int[] cuSeqlensQ, int[] cuSeqlensK, int[] validKeys) {

  public VarlenSequences {
    check(cuSeqlensQ, "cuSeqlensQ");
    check(cuSeqlensK, "cuSeqlensK");
    if (cuSeqlensK.length != cuSeqlensQ.length) {
      throw new IllegalArgumentException("cuSeqlensK has " + cuSeqlensK.length
          + " offsets, expected cuSeqlensQ's " + cuSeqlensQ.length);
    }
    if (validKeys != null) {
      if (validKeys.length != cuSeqlensQ.length - 1) {
        throw new IllegalArgumentException("validKeys has " + validKeys.length
            + " entries, expected one per sequence (" + (cuSeqlensQ.length - 1) + ")");
      }
      for (int s = 0; s < validKeys.length; s++) {
        if (validKeys[s] < 0) {
          throw new IllegalArgumentException(
              "validKeys[" + s + "] must be >= 0, got " + validKeys[s]);
        }
      }
    }
  }

  /** Self-attention: queries and keys share the offsets {@code cuSeqlens} (length s+1). */
  public static VarlenSequences of(int[] cuSeqlens) {
    return new VarlenSequences(cuSeqlens, cuSeqlens, null);
  }

  /** Offsets {@code 0, n0, n0+n1, …} for sequences of these lengths. */
  public static int[] offsets(int... lengths) {
    int[] cu = new int[lengths.length + 1];
    for (int s = 0; s < lengths.length; s++) {
      if (lengths[s] < 0) {
        throw new IllegalArgumentException(
            "lengths[" + s + "] must be >= 0, got " + lengths[s]);
      }
      cu[s + 1] = Math.addExact(cu[s], lengths[s]);
    }
    return cu;
  }

  /** The same sequences with key rows from {@code validKeys[s]} on hidden (key padding). */
  public VarlenSequences withValidKeys(int[] validKeys) {
    return new VarlenSequences(cuSeqlensQ, cuSeqlensK, validKeys);
  }

  public int count() {
    return cuSeqlensQ.length - 1;
  }

  public int queryStart(int s) {
    return cuSeqlensQ[s];
  }

  public int queries(int s) {
    return cuSeqlensQ[s + 1] - cuSeqlensQ[s];
  }

  public int keyStart(int s) {
    return cuSeqlensK[s];
  }

  public int keys(int s) {
    return cuSeqlensK[s + 1] - cuSeqlensK[s];
  }

  public int totalQueries() {
    return cuSeqlensQ[cuSeqlensQ.length - 1];
  }

  public int totalKeys() {
    return cuSeqlensK[cuSeqlensK.length - 1];
  }

  /**
   * The mask of sequence {@code s} in its own row numbers: {@code base}'s causal flag, offsets and
   * key bound, and its key padding ({@code validKeys[s]} rows are real).
   */
  public AttentionMask mask(int s, AttentionMask base) {
    if (validKeys == null) {
      return base;
    }
    long limit = Math.min(base.keyLimit(), base.keyOffset() + validKeys[s]);
    return new AttentionMask(base.causal(), base.queryOffset(), base.keyOffset(),
        Math.max(0, limit));
  }

  /** Checks that the packed buffers hold exactly these sequences' rows. */
  public void checkRows(BlockView q, BlockView k) {
    if (totalQueries() != q.seq()) {
      throw new IllegalArgumentException("cuSeqlensQ ends at " + totalQueries()
          + ", expected q's " + q.seq() + " rows");
    }
    if (totalKeys() != k.seq()) {
      throw new IllegalArgumentException("cuSeqlensK ends at " + totalKeys()
          + ", expected k's " + k.seq() + " rows");
    }
  }

  /** Rows {@code [from, from+count)} of batch element {@code b} as a view of batch 1. */
  static BlockView batchRows(BlockView x, int b, int from, int count) {
    return new BlockView(x.data(), x.index(b, from, 0), 1, count, x.heads(), x.headDim(),
        x.rowStride(), x.batchStride());
  }

  private static void check(int[] cu, String name) {
    if (cu == null || cu.length < 1) {
      throw new IllegalArgumentException(name + " must hold at least one offset (0), got "
          + (cu == null ? "null" : "none"));
    }
    if (cu[0] != 0) {
      throw new IllegalArgumentException(name + "[0] must be 0, got " + cu[0]);
    }
    for (int s = 1; s < cu.length; s++) {
      if (cu[s] < cu[s - 1]) {
        throw new IllegalArgumentException(name + " must not decrease, got " + cu[s - 1]
            + " then " + cu[s] + " at index " + s);
      }
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof VarlenSequences v && Arrays.equals(cuSeqlensQ, v.cuSeqlensQ)
        && Arrays.equals(cuSeqlensK, v.cuSeqlensK) && Arrays.equals(validKeys, v.validKeys);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * Arrays.hashCode(cuSeqlensQ) + Arrays.hashCode(cuSeqlensK))
        + Arrays.hashCode(validKeys);
  }

  @Override
  public String toString() {
    return count() + " sequences, " + totalQueries() + " query rows, " + totalKeys()
        + " key rows" + (validKeys == null ? "" : ", with key padding");
  }
}
