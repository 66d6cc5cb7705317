package dev.mosaic.spark.runner;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import scala.collection.Seq;

/**
 * Rows/s of {@link DataFrameAttention}'s embedding I/O, the boxed way it was (before) against the
 * internal-row way it is (after), side by side in one session on the same cached input:
 * <ul>
 *   <li><b>in</b>: a cached {@code (seq int, pos int, emb array<float>)} table to checked
 *       {@link SequenceRows.Cell}s, counted. Before: {@code javaRDD()} (Spark builds a
 *       {@code Row} with a boxed {@code Float} per value) and the {@code Seq}-based check and
 *       unboxing; after: {@code queryExecution().toRdd()} and {@link SequenceRows#toCell}.
 *   <li><b>out</b>: output vectors (sliced from one float[] per task, so no attention runs) to a
 *       DataFrame, written to Spark's {@code noop} sink (every row materialised). Before:
 *       {@code Row}s holding a float[] through {@code createDataFrame} (converted value by value);
 *       after: {@link SequenceRows#outRow} internal rows through {@link InternalFrames}.
 * </ul>
 * Each measurement runs {@code repeats} times, before and after alternating, best time kept.
 * Run: {@code java -cp ... dev.mosaic.spark.runner.EmbeddingIoBenchmark [rows] [embed] [repeats]}.
 */
public final class EmbeddingIoBenchmark {
  private EmbeddingIoBenchmark() {}

  /** One width's result: rows/s before and after, in and out. */
  public record Result(int rows, int embed, double inBefore, double inAfter, double outBefore,
      double outAfter) {}

  public static void main(String[] args) {
    int rows = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
    int embed = args.length > 1 ? Integer.parseInt(args[1]) : 32;
    int repeats = args.length > 2 ? Integer.parseInt(args[2]) : 3;
    SparkSession spark = SparkSessions.getOrCreate(SparkSessions.defaultMaster(2),
        "mosaic-bench-embedding-io", Map.of());
    try {
      run(spark, rows, embed, repeats, System.out);
    } finally {
      spark.stop();
    }
  }

  public static Result run(SparkSession spark, int rows, int embed, int repeats,
      PrintStream out) {
    int parts = spark.sparkContext().defaultParallelism();
    int seqLen = 1000;
    int seqs = (rows + seqLen - 1) / seqLen;
    long[] lengths = new long[seqs];
    Arrays.fill(lengths, seqLen);
    lengths[seqs - 1] = rows - (long) seqLen * (seqs - 1);
    Object[] keys = new Object[seqs];
    Arrays.setAll(keys, i -> i);
    SequenceRows layout = new SequenceRows(keys, keys, lengths, false, 0, embed, false,
        new SequenceChecks.Names("key", "pos", "emb", embed));
    Dataset<Row> in = spark.range(rows).repartition(parts)
        .select(col("id").divide(seqLen).cast("int").as("seq"),
            col("id").mod(seqLen).cast("int").as("pos"),
            expr("transform(sequence(0, " + (embed - 1) + "), i -> cast(sin(id * 0.37 + i * 1.3)"
                + " as float))").as("emb"))
        .cache();
    in.count();
    StructType outSchema = new StructType().add("key", DataTypes.IntegerType, false)
        .add("pos", DataTypes.IntegerType, false)
        .add("y", DataTypes.createArrayType(DataTypes.FloatType, false), false);
    JavaRDD<Integer> tasks = JavaSparkContext.fromSparkContext(spark.sparkContext())
        .parallelize(rangeList(parts), parts);

    double inBefore = Double.MAX_VALUE;
    double inAfter = Double.MAX_VALUE;
    double outBefore = Double.MAX_VALUE;
    double outAfter = Double.MAX_VALUE;
    for (int r = 0; r < repeats; r++) {
      inBefore = Math.min(inBefore, time(() -> in.javaRDD().map(row -> boxedCell(row, layout))
          .count(), rows));
      inAfter = Math.min(inAfter, time(() -> in.queryExecution().toRdd().toJavaRDD()
          .map(layout::toCell).count(), rows));
      outBefore = Math.min(outBefore, time(() -> noop(spark.createDataFrame(
          outputs(tasks, rows, parts, embed).map(c -> boxedOutRow(c, embed)), outSchema), rows), rows));
      outAfter = Math.min(outAfter, time(() -> noop(InternalFrames.of(spark,
          outputs(tasks, rows, parts, embed).map(c -> layout.outRow(c.seq(), c.pos(),
              c.values(), 0)), outSchema), rows), rows));
    }
    in.unpersist();
    Result res = new Result(rows, embed, rows / inBefore, rows / inAfter, rows / outBefore,
        rows / outAfter);
    out.printf("embedding I/O, %d rows x %d floats, best of %d, %d partitions:%n", rows, embed,
        repeats, parts);
    out.printf("  in : boxed %,10.0f rows/s   internal %,10.0f rows/s   %.1fx%n", res.inBefore(),
        res.inAfter(), res.inAfter() / res.inBefore());
    out.printf("  out: boxed %,10.0f rows/s   internal %,10.0f rows/s   %.1fx%n",
        res.outBefore(), res.outAfter(), res.outAfter() / res.outBefore());
    return res;
  }

  /** Seconds of one action (which returns the rows it saw, checked against {@code rows}). */
  private static double time(java.util.function.LongSupplier action, long rows) {
    long t0 = System.nanoTime();
    long n = action.getAsLong();
    double s = (System.nanoTime() - t0) / 1e9;
    if (n != rows) {
      throw new IllegalStateException("the action saw " + n + " rows, expected " + rows);
    }
    return s;
  }

  /** Writes every row to Spark's noop sink; returns the rows the outputs were made with. */
  private static long noop(Dataset<Row> df, long rows) {
    df.write().format("noop").mode(SaveMode.Overwrite).save();
    return rows;
  }

  /** Per task, its share of output vectors, each a slice of one float[] (no compute). */
  private static JavaRDD<SequenceRows.Cell> outputs(JavaRDD<Integer> tasks, int rows, int parts,
      int embed) {
    return tasks.flatMap(t -> {
      int from = (int) ((long) rows * t / parts);
      int to = (int) ((long) rows * (t + 1) / parts);
      float[] y = new float[embed];
      for (int i = 0; i < embed; i++) {
        y[i] = (float) Math.sin(t + i);
      }
      List<SequenceRows.Cell> cells = new ArrayList<>(to - from);
      for (int i = from; i < to; i++) {
        cells.add(new SequenceRows.Cell(i / 1000, i % 1000, y));
      }
      return cells.iterator();
    });
  }

  private static List<Integer> rangeList(int n) {
    List<Integer> l = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      l.add(i);
    }
    return l;
  }

  /** The input conversion as it was before: a boxed Row, the Seq-based check, unboxing. */
  private static SequenceRows.Cell boxedCell(Row row, SequenceRows layout) {
    int seq = row.getInt(0);
    long pos = ((Number) row.get(1)).longValue();
    Object value = row.get(2);
    String problem = SequenceChecks.describe(value, false, 0, layout.names());
    if (problem != null) {
      throw new IllegalStateException("bad embedding: " + problem);
    }
    float[] values = new float[layout.rowFloats()];
    Seq<?> outer = (Seq<?>) value;
    for (int i = 0; i < values.length; i++) {
      values[i] = (Float) outer.apply(i);
    }
    return new SequenceRows.Cell(seq, pos, values);
  }

  /** The output row as it was before: a Row holding a float[] copy, converted by Spark. */
  private static Row boxedOutRow(SequenceRows.Cell c, int embed) {
    return RowFactory.create(c.seq(), (int) c.pos(), Arrays.copyOfRange(c.values(), 0, embed));
  }
}
