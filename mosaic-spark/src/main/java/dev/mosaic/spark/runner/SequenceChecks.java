package dev.mosaic.spark.runner;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.countDistinct;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.max;
import static org.apache.spark.sql.functions.min;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;
import static org.apache.spark.sql.functions.lead;
import static org.apache.spark.sql.functions.size;
import static org.apache.spark.sql.functions.udf;

import java.io.Serializable;
import java.util.HexFormat;
import java.util.List;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.types.DataTypes;
import scala.collection.Seq;

/**
 * The driver's checks of a {@link DataFrameAttention} input, from per-key statistics (one Spark
 * query); on a problem one more query finds the first offending row, and the error names its key
 * and position. Sequences may have any lengths; each key's positions are {@code 0..n-1}.
 */
final class SequenceChecks {
  /** Internal column names of the normalised input. */
  static final String K = "__mosaic_key";
  static final String P = "__mosaic_pos";
  static final String E = "__mosaic_emb";
  private static final String POSITIONS_RULE = "positions must be 0..n-1 without gaps or"
      + " duplicates";

  private SequenceChecks() {}

  /** Column names and embedDim, for messages and task-side checks. */
  record Names(String key, String pos, String emb, int embed) implements Serializable {}

  /**
   * One row per key, in key order: key, rows, non-null positions, distinct positions, lowest and
   * highest position, malformed embeddings, fewest and most features. Row {@code i} is sequence
   * {@code i}; its length is its row count.
   */
  static List<Row> stats(Dataset<Row> in, boolean nested, int embed) {
    return in.groupBy(col(K)).agg(count(lit(1)), count(col(P)), countDistinct(col(P)),
            min(col(P)), max(col(P)), sum(when(badEmbedding(nested, embed), 1).otherwise(0)),
            min(size(col(E))), max(size(col(E))))
        // One sorted partition: the keys come to the driver anyway, and a global ORDER BY would
        // cost a sampling job for its range partitioner.
        .coalesce(1).sortWithinPartitions(col(K)).collectAsList();
  }

  /**
   * Checks the per-key statistics (key order) and, on a problem, finds the first offending row
   * with one more query. Returns the number of features (0 for {@code array<float>}).
   */
  static int validate(Dataset<Row> in, List<Row> stats, Names names, boolean nested) {
    for (Row s : stats) {
      if (s.isNullAt(0)) {
        throw new IllegalArgumentException("key column '" + names.key() + "' is null in "
            + s.getLong(1) + " row(s); every row needs a sequence key");
      }
    }
    for (Row s : stats) {
      long nulls = s.getLong(1) - s.getLong(2);
      if (nulls > 0) {
        throw new IllegalArgumentException("position column '" + names.pos() + "' is null in "
            + nulls + " row(s) of key " + show(s.get(0)));
      }
    }
    for (Row s : stats) {
      if (s.getLong(3) != s.getLong(1)) {
        Row dup = in.groupBy(col(K), col(P)).count().filter(col("count").gt(1))
            .orderBy(col(K), col(P)).first();
        throw new IllegalArgumentException("key " + show(dup.get(0)) + " has position "
            + dup.get(1) + " in " + dup.getLong(2) + " rows; " + POSITIONS_RULE);
      }
    }
    for (Row s : stats) {
      long rows = s.getLong(1);
      long lo = ((Number) s.get(4)).longValue();
      long hi = ((Number) s.get(5)).longValue();
      if (lo < 0) {
        throw new IllegalArgumentException("key " + show(s.get(0)) + " has position " + lo
            + "; " + POSITIONS_RULE);
      }
      if (lo > 0 || hi != rows - 1) {
        long missing = 0;
        if (lo == 0) {
          // No duplicates, so the first gap follows the first position whose successor is not
          // the next position; earlier keys have none.
          Row gap = in.select(col(K), col(P).cast("long").as(P))
              .withColumn("next", lead(col(P), 1).over(Window.partitionBy(col(K)).orderBy(col(P))))
              .filter(col("next").isNotNull().and(col("next").notEqual(col(P).plus(1))))
              .orderBy(col(K), col(P)).first();
          missing = gap.getLong(1) + 1;
        }
        throw new IllegalArgumentException("key " + show(s.get(0)) + " is missing position "
            + missing + " (it has " + rows + " rows, positions up to " + hi + "); "
            + POSITIONS_RULE);
      }
    }
    for (Row s : stats) {
      if (s.getLong(6) > 0) {
        Row row = in.filter(badEmbedding(nested, names.embed())).orderBy(col(K), col(P)).first();
        String problem = describe(row.get(2), nested, -1, names);
        throw new IllegalArgumentException(where(row.get(0), row.get(1)) + ": embedding column '"
            + names.emb() + "' " + (problem != null ? problem : "is invalid"));
      }
    }
    int features = 0;
    if (nested) {
      int lo = Integer.MAX_VALUE;
      int hi = Integer.MIN_VALUE;
      for (Row s : stats) {
        lo = Math.min(lo, s.getInt(7));
        hi = Math.max(hi, s.getInt(8));
      }
      if (lo != hi) {
        Row first = in.select(col(K), col(P), size(col(E))).orderBy(col(K), col(P)).first();
        int expected = first.getInt(2);
        Row other = in.select(col(K), col(P), size(col(E)).as("f"))
            .filter(col("f").notEqual(expected)).orderBy(col(K), col(P)).first();
        throw new IllegalArgumentException(where(other.get(0), other.get(1))
            + ": embedding column '" + names.emb() + "' has " + other.getInt(2) + " features,"
            + " expected " + expected + " like " + where(first.get(0), first.get(1))
            + " (every row must have the same number of features)");
      }
      features = lo;
    }
    return features;
  }

  /**
   * True for a malformed embedding: null, a length other than {@code embed}, a null element; in
   * the nested form also no features or a null feature. (The feature count is checked apart.)
   */
  static Column badEmbedding(boolean nested, int embed) {
    Column e = col(E);
    return nested
        ? e.isNull().or(size(e).equalTo(0)).or(udf((UDF1<Seq<?>, Boolean>) features
            -> hasBadFeature(features, embed), DataTypes.BooleanType).apply(e))
        : e.isNull().or(size(e).notEqual(embed)).or(HAS_NULL_ELEMENT.apply(e));
  }

  // The element checks are Java UDFs, not exists(e, x -> x IS NULL): Spark evaluates
  // higher-order functions interpreted, and Spark 4.2's interpreted element access builds a new
  // SQLConf per element (~100 ns). On 500,000 embeddings of 32 floats that check took 1.4 s of
  // the stats query's 1.6 s; the UDF, which gets each array as one Seq, takes ~0.1 s.
  private static final UserDefinedFunction HAS_NULL_ELEMENT =
      udf((UDF1<Seq<?>, Boolean>) SequenceChecks::hasNullElement, DataTypes.BooleanType);

  static boolean hasNullElement(Seq<?> values) {
    if (values != null) {
      for (scala.collection.Iterator<?> it = values.iterator(); it.hasNext(); ) {
        if (it.next() == null) {
          return true;
        }
      }
    }
    return false;
  }

  /** A null feature, one of another width than {@code embed}, or one holding a null. */
  static boolean hasBadFeature(Seq<?> features, int embed) {
    if (features != null) {
      for (scala.collection.Iterator<?> it = features.iterator(); it.hasNext(); ) {
        Seq<?> f = (Seq<?>) it.next();
        if (f == null || f.size() != embed || hasNullElement(f)) {
          return true;
        }
      }
    }
    return false;
  }


  /** A key as it appears in messages: strings quoted, binary as hex. */
  static String show(Object key) {
    if (key instanceof String s) {
      return "'" + s + "'";
    }
    if (key instanceof byte[] b) {
      return "0x" + HexFormat.of().formatHex(b);
    }
    return String.valueOf(key);
  }

  static String where(Object key, Object pos) {
    return "key " + show(key) + " position " + pos;
  }

  /**
   * What is wrong with one embedding value, or null when it is well formed: {@code embed} floats,
   * or for the nested form {@code features} arrays of them ({@code features < 0}: any number > 0).
   */
  static String describe(Object value, boolean nested, int features, Names names) {
    if (value == null) {
      return "is null";
    }
    Seq<?> outer = (Seq<?>) value;
    int e = names.embed();
    if (!nested) {
      return describeVector(outer, e, "has ");
    }
    if (outer.isEmpty()) {
      return "has no features";
    }
    if (features >= 0 && outer.size() != features) {
      return "has " + outer.size() + " features, expected " + features;
    }
    for (int j = 0; j < outer.size(); j++) {
      Object inner = outer.apply(j);
      if (inner == null) {
        return "feature " + j + " is null";
      }
      String p = describeVector((Seq<?>) inner, e, "feature " + j + " has ");
      if (p != null) {
        return p;
      }
    }
    return null;
  }

  private static String describeVector(Seq<?> v, int embed, String prefix) {
    if (v.size() != embed) {
      return prefix + v.size() + " values, expected embedDim " + embed + " (from spec.weights())";
    }
    for (int i = 0; i < v.size(); i++) {
      if (v.apply(i) == null) {
        return prefix + "a null at index " + i;
      }
    }
    return null;
  }

}
