package dev.mosaic.spark.jobs;

import static org.apache.spark.sql.functions.col;

import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.runner.DataFrameAttention;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedAttention;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.StructField;

/**
 * A table of sequences in, the same table with attention outputs out: reads Parquet rows
 * {@code (key, position, embedding)}, runs {@link DataFrameAttention} over every sequence (any
 * lengths; short ones packed into ordinary tasks, long ones sharded over barrier stages), and
 * writes one row {@code (key, position, out)} per input row as Parquet through
 * {@link ParquetOutput}: the output path holds the complete result or what it held before, never
 * a partial one. Bad input fails on the driver before anything is written. Embeddings stored as
 * doubles ({@code array<double>}, as pandas writes them) are read as floats.
 */
public final class AttentionTableJob {

  /** Column names: the input's key, position and embedding, and the output's embedding. */
  public record Columns(String key, String pos, String emb, String out) {}

  private AttentionTableJob() {}

  /** Runs the job; prints the plan and the result line on {@code log}; returns the plan. */
  public static RaggedPlan run(MosaicContext ctx, String input, Columns cols,
      ShardedAttention.Spec spec, String output, PrintStream log) {
    requireExists(ctx, input);
    Dataset<Row> table = floats(ctx.spark().read().parquet(input), cols.emb());
    long start = System.nanoTime();
    DataFrameAttention.Prepared run = DataFrameAttention.prepare(ctx, table, cols.key(),
        cols.pos(), cols.emb(), spec, cols.out());
    if (run.plan() != null) {
      log.print(run.plan().describe());
    }
    ParquetOutput.write(run.output(), output);
    long rows = 0;
    if (run.plan() != null) {
      for (long n : run.plan().lengths()) {
        rows += n;
      }
    }
    log.printf("wrote %d rows (%d sequences) to %s in %.1f s%n", rows,
        run.plan() == null ? 0 : run.plan().lengths().length, output,
        (System.nanoTime() - start) / 1e9);
    return run.plan();
  }

  private static void requireExists(MosaicContext ctx, String input) {
    try {
      Path p = new Path(input);
      FileSystem fs = p.getFileSystem(ctx.spark().sparkContext().hadoopConfiguration());
      if (!fs.exists(p)) {
        throw new IllegalArgumentException("input " + input + ": no such Parquet file or folder");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("input " + input + ": " + e.getMessage(), e);
    }
  }

  /** The embedding column as floats when it holds doubles; other columns as they are. */
  static Dataset<Row> floats(Dataset<Row> table, String emb) {
    for (StructField f : table.schema().fields()) {
      if (!f.name().equals(emb)) {
        continue;
      }
      DataType t = f.dataType();
      DataType vector = DataTypes.createArrayType(DataTypes.FloatType);
      DataType target = null;
      if (t instanceof ArrayType a && a.elementType() instanceof DoubleType) {
        target = vector;
      } else if (t instanceof ArrayType a && a.elementType() instanceof ArrayType b
          && b.elementType() instanceof DoubleType) {
        target = DataTypes.createArrayType(vector);
      }
      if (target != null) {
        Column c = col("`" + emb.replace("`", "``") + "`").cast(target);
        return table.withColumn(emb, c);
      }
    }
    return table;
  }
}
