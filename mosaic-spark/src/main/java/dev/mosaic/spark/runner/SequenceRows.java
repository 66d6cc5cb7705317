package dev.mosaic.spark.runner;

import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.collection.Seq;

/**
 * How the rows of a {@link DataFrameAttention} call look, shipped to every task: the keys in
 * sequence order, each sequence's length, the embedding's shape. Turns an input row into a
 * {@link Cell} and an output vector back into a row.
 *
 * @param keys the key of sequence {@code i} (key order)
 * @param lengths the number of positions of sequence {@code i}
 * @param features features per row ({@code array<array<float>>}), 0 for {@code array<float>}
 */
record SequenceRows(Object[] keys, long[] lengths, boolean nested, int features, int embed,
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

  /** Row {@code (sequence index, position, embedding)} as a cell, checked again. */
  Cell toCell(Row row) {
    int seq = row.getInt(0);
    long pos = ((Number) row.get(1)).longValue();
    Object value = row.get(2);
    String problem = SequenceChecks.describe(value, nested, features, names);
    if (problem != null) {
      throw new IllegalStateException(where(seq, pos) + ": embedding column '" + names.emb()
          + "' " + problem + CHANGED);
    }
    if (pos < 0 || pos >= lengths[seq]) {
      throw new IllegalStateException(where(seq, pos) + ": position outside 0.."
          + (lengths[seq] - 1) + CHANGED);
    }
    float[] values = new float[rowFloats()];
    Seq<?> outer = (Seq<?>) value;
    if (nested) {
      for (int j = 0; j < features; j++) {
        Seq<?> inner = (Seq<?>) outer.apply(j);
        for (int i = 0; i < embed; i++) {
          values[j * embed + i] = (Float) inner.apply(i);
        }
      }
    } else {
      for (int i = 0; i < values.length; i++) {
        values[i] = (Float) outer.apply(i);
      }
    }
    return new Cell(seq, pos, values);
  }

  /** Output row {@code (key, pos, embedding)} from {@code rowFloats()} floats at {@code off}. */
  Row outRow(int seq, long pos, float[] out, int off) {
    Object emb;
    if (nested) {
      float[][] m = new float[features][];
      for (int j = 0; j < features; j++) {
        m[j] = Arrays.copyOfRange(out, off + j * embed, off + (j + 1) * embed);
      }
      emb = m;
    } else {
      emb = Arrays.copyOfRange(out, off, off + embed);
    }
    return RowFactory.create(keys[seq], longPos ? (Object) pos : (Object) Math.toIntExact(pos),
        emb);
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
