package dev.mosaic.spark.runner;

import java.io.Serializable;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;

/**
 * How the rows of a {@link DataFrameAttention} call look, shipped to every task: the keys in
 * sequence order, each sequence's length, the embedding's shape. Turns an input row into a
 * {@link Cell} and an output vector back into a row, both in Spark's internal form
 * ({@link InternalRow}, embeddings as array data moved in bulk by {@link InternalEmbeddings}), so
 * that no float is boxed on the way in or out.
 *
 * @param keys the key of sequence {@code i} (key order), as the driver's Rows give it (messages)
 * @param catalystKeys the same keys in Spark's internal form (the output rows carry them)
 * @param lengths the number of positions of sequence {@code i}
 * @param features features per row ({@code array<array<float>>}), 0 for {@code array<float>}
 */
record SequenceRows(Object[] keys, Object[] catalystKeys, long[] lengths, boolean nested, int features, int embed,
    boolean longPos, SequenceChecks.Names names) implements Serializable {

  /** The input left the driver's checks; a task that sees other rows says how to fix it. */
  static final String CHANGED = " (the input gave other rows than run() validated:"
      + " make it deterministic, for example cache it)";

  /** One input row on its way to its task: sequence index, position, the floats. */
  record Cell(int seq, long pos, float[] values) implements Serializable {}

  /** Floats per position. */
  int rowFloats() {
    return (nested ? features : 1) * embed;
  }

  /**
   * Internal row {@code (sequence index: int, position: int or bigint, embedding)} as a cell,
   * checked again. The row may be reused by its iterator: nothing of it is kept.
   */
  Cell toCell(InternalRow row) {
    int seq = row.getInt(0);
    long pos = longPos ? row.getLong(1) : row.getInt(1);
    org.apache.spark.sql.catalyst.util.ArrayData value = row.isNullAt(2) ? null : row.getArray(2);
    String problem = InternalEmbeddings.describe(value, nested, features, embed);
    if (problem != null) {
      throw new IllegalStateException(where(seq, pos) + ": embedding column '" + names.emb()
          + "' " + problem + CHANGED);
    }
    if (pos < 0 || pos >= lengths[seq]) {
      throw new IllegalStateException(where(seq, pos) + ": position outside 0.."
          + (lengths[seq] - 1) + CHANGED);
    }
    return new Cell(seq, pos, InternalEmbeddings.read(value, nested, features, embed));
  }

  /**
   * Output row {@code (key, pos, embedding)} in Spark's internal form, from {@code rowFloats()}
   * floats of {@code out} at {@code off}.
   */
  InternalRow outRow(int seq, long pos, float[] out, int off) {
    return new GenericInternalRow(new Object[] {catalystKeys[seq],
        longPos ? (Object) pos : (Object) Math.toIntExact(pos),
        InternalEmbeddings.write(out, off, nested, features, embed)});
  }

  /** "key K position P" for messages. */
  String where(int seq, long pos) {
    return SequenceChecks.where(keys[seq], pos);
  }

  /** The sequence's shape for the layer: {@code (n[, features], embed)}. */
  int[] shape(int rows) {
    return nested ? new int[] {rows, features, embed} : new int[] {rows, embed};
  }
}
