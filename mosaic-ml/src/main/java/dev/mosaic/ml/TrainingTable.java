package dev.mosaic.ml;

import dev.mosaic.spark.model.TableStats;
import dev.mosaic.spark.model.TableStatsSums;
import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.storage.StorageLevel;

/**
 * The train rows of a fit, numbered 0..n−1 in the DataFrame's order, checked and summarised on
 * the driver by two ordinary Spark aggregations (in double) before any barrier stage: a bad row
 * (null or missing features, a null or non-class-id label, a feature count that differs from
 * the others) is found here and reported as one line naming the row, so no barrier stage starts
 * on it and no retries hide it. The second aggregation gives the standardisation's std.
 */
final class TrainingTable {
  /** One train row: its number, features and label. */
  record TrainRow(long index, float[] x, float y) implements Serializable {}

  final JavaRDD<TrainRow> rows;
  private final JavaRDD<Parsed> parsed;
  final long count;
  final int features;
  final int classes;
  final TableStats stats;

  private TrainingTable(JavaRDD<Parsed> parsed, long count, int features, int classes,
      TableStats stats) {
    this.parsed = parsed;
    this.rows = parsed.map(p -> new TrainRow(p.index, p.x, p.y));
    this.count = count;
    this.features = features;
    this.classes = classes;
    this.stats = stats;
  }

  /** The rows of {@code df}: features as {@code features} (bound to its schema) reads them. */
  static TrainingTable read(Dataset<?> df, FeatureColumn features, String labelCol) {
    if (!(FeatureColumn.field(df.schema(), labelCol).dataType() instanceof NumericType)) {
      throw new IllegalArgumentException("column '" + labelCol + "' must be a numeric type, got "
          + FeatureColumn.field(df.schema(), labelCol).dataType().simpleString());
    }
    if (Arrays.asList(features.columns()).contains(labelCol)) {
      throw new IllegalArgumentException("column '" + labelCol + "' is both the label and a"
          + " feature: expected the label apart from the features");
    }
    // only the columns read travel to the aggregations; the label comes last
    Dataset<Row> used = df.toDF().select(columns(features.columns(), labelCol));
    FeatureColumn fc = features.bind(used.schema());
    int labelAt = used.schema().fieldIndex(labelCol);
    JavaRDD<Parsed> parsed = used.javaRDD().zipWithIndex()
        .map(t -> Parsed.of(t._1(), t._2(), fc, labelCol, labelAt))
        .persist(StorageLevel.MEMORY_AND_DISK());
    Sums sums = parsed.treeAggregate(new Sums(), Sums::add, Sums::merge);
    String problem = sums.firstProblem();
    if (problem != null) {
      parsed.unpersist(false);
      throw new IllegalArgumentException(problem);
    }
    if (sums.count == 0) {
      parsed.unpersist(false);
      throw new IllegalArgumentException("the training DataFrame is empty: expected at least one"
          + " row");
    }
    float[] mean = TableStatsSums.means(sums.count, sums.sum);
    double[] sq = parsed.treeAggregate(new double[mean.length], (acc, p) -> {
      for (int c = 0; c < mean.length; c++) {
        double d = p.x[c] - (double) mean[c];
        acc[c] += d * d;
      }
      return acc;
    }, (a, b) -> {
      for (int c = 0; c < a.length; c++) {
        a[c] += b[c];
      }
      return a;
    });
    TableStats stats = TableStatsSums.of(sums.count, sums.sum, sq, sums.labelSum);
    return new TrainingTable(parsed, sums.count, sums.features, (int) sums.labelMax + 1, stats);
  }

  /** The columns by their exact names (quoted: a dot in a name is not a struct field). */
  private static Column[] columns(String[] features, String label) {
    Column[] out = new Column[features.length + 1];
    for (int i = 0; i <= features.length; i++) {
      String name = i < features.length ? features[i] : label;
      out[i] = functions.col("`" + name.replace("`", "``") + "`");
    }
    return out;
  }

  /** Frees the parsed rows kept in memory for the aggregations and the barrier stage. */
  void release() {
    parsed.unpersist(false);
  }

  /** A parsed row, or the one-line problem with it. */
  static final class Parsed implements Serializable {
    final long index;
    final float[] x;
    final float y;
    final String problem;

    private Parsed(long index, float[] x, float y, String problem) {
      this.index = index;
      this.x = x;
      this.y = y;
      this.problem = problem;
    }

    static Parsed of(Row row, long index, FeatureColumn fc, String labelCol, int labelAt) {
      String name = "row " + index + " of the training DataFrame (0-based)";
      try {
        float[] x = fc.read(row, name);
        if (x.length == 0) {
          return new Parsed(index, null, 0, fc.describe() + " is empty in " + name
              + ": expected at least one feature");
        }
        if (row.isNullAt(labelAt)) {
          return new Parsed(index, null, 0, "column '" + labelCol + "' is null in " + name
              + ": every train row needs its class id");
        }
        double y = ((Number) row.get(labelAt)).doubleValue();
        if (y < 0 || y != Math.rint(y) || y > 1e6) {
          return new Parsed(index, null, 0, "column '" + labelCol + "' must hold class ids"
              + " (non-negative integers), got " + y + " in " + name);
        }
        return new Parsed(index, x, (float) y, null);
      } catch (IllegalArgumentException e) {
        return new Parsed(index, null, 0, e.getMessage());
      }
    }
  }

  /**
   * Counts and sums of the rows, the problem of the lowest-numbered bad row, and per feature
   * count seen the lowest row that has it (so the driver names the same rows however the data
   * is partitioned).
   */
  static final class Sums implements Serializable {
    private static final int MAX_SIZES = 16;
    long count;
    int features = -1;
    double[] sum;
    double labelSum;
    float labelMax = -1;
    long problemRow = Long.MAX_VALUE;
    String problem;
    final java.util.TreeMap<Integer, Long> firstRowOfSize = new java.util.TreeMap<>();

    Sums add(Parsed p) {
      if (p.problem != null) {
        return problem(p.index, p.problem);
      }
      firstRowOfSize.merge(p.x.length, p.index, Math::min);
      if (features < 0) {
        features = p.x.length;
        sum = new double[features];
      } else if (p.x.length != features) {
        return this; // a size problem: firstProblem() reports it
      }
      count++;
      for (int c = 0; c < features; c++) {
        sum[c] += p.x[c];
      }
      labelSum += p.y;
      labelMax = Math.max(labelMax, p.y);
      return this;
    }

    Sums merge(Sums o) {
      if (o.problem != null) {
        problem(o.problemRow, o.problem);
      }
      o.firstRowOfSize.forEach((size, row) -> {
        if (firstRowOfSize.size() < MAX_SIZES || firstRowOfSize.containsKey(size)) {
          firstRowOfSize.merge(size, row, Math::min);
        }
      });
      if (o.features < 0) {
        return this;
      }
      if (features < 0) {
        features = o.features;
        sum = o.sum.clone();
      } else if (o.features == features) {
        for (int c = 0; c < features; c++) {
          sum[c] += o.sum[c];
        }
      } else {
        return this; // a size problem: firstProblem() reports it
      }
      count += o.count;
      labelSum += o.labelSum;
      labelMax = Math.max(labelMax, o.labelMax);
      return this;
    }

    /**
     * The first problem, by row: a bad row, or the first row whose feature count differs from
     * the count of the lowest-numbered row; null when there is none.
     */
    String firstProblem() {
      if (firstRowOfSize.size() > 1) {
        long refRow = Long.MAX_VALUE;
        int refSize = -1;
        for (var e : firstRowOfSize.entrySet()) {
          if (e.getValue() < refRow) {
            refRow = e.getValue();
            refSize = e.getKey();
          }
        }
        long badRow = Long.MAX_VALUE;
        int badSize = -1;
        for (var e : firstRowOfSize.entrySet()) {
          if (e.getKey() != refSize && e.getValue() < badRow) {
            badRow = e.getValue();
            badSize = e.getKey();
          }
        }
        if (badRow < problemRow) {
          return "row " + badRow + " of the training DataFrame (0-based) has " + badSize
              + " features, row " + refRow + " has " + refSize + ": expected the same count";
        }
      }
      return problem;
    }

    private Sums problem(long row, String what) {
      if (row < problemRow) {
        problemRow = row;
        problem = what;
      }
      return this;
    }
  }
}
