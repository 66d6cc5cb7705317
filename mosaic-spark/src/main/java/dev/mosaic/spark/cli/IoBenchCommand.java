package dev.mosaic.spark.cli;

import dev.mosaic.spark.runner.EmbeddingIoBenchmark;
import dev.mosaic.spark.runner.SparkSessions;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code mosaic bench io}: {@link EmbeddingIoBenchmark} from the CLI — rows/s of
 * {@code DataFrameAttention}'s embedding reads and writes, boxed rows against internal rows, side
 * by side in one session. Prints the machine's load first: the ratios are what to compare, and
 * only on a quiet machine.
 */
final class IoBenchCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic bench io [--rows 200000] [--embed 32] [--repeats 3] [--master URL]",
      "  DataFrameAttention's embedding I/O, the boxed way (Row/Seq of Float per value) against",
      "  Spark's internal rows (bulk array copies), in one session: 'in' reads a cached",
      "  (seq, pos, emb array<float>) table into checked cells, 'out' writes output vectors",
      "  (no attention computed) to Spark's noop sink. Best of --repeats passes, the two ways",
      "  alternating; prints rows/s and the ratio (internal / boxed).");

  private IoBenchCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("bench io", args, Set.of("rows", "embed", "repeats", "master"),
        Set.of());
    if (!f.positional().isEmpty()) {
      throw new UserError("unexpected argument '" + f.positional().get(0) + "'");
    }
    int rows = f.positive("rows", 200_000);
    int embed = f.positive("embed", 32);
    int repeats = f.positive("repeats", 3);
    double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    out.printf(Locale.ROOT, "load average %.2f on %d cores (ratios are comparable only on a"
        + " quiet machine)%n", load, Runtime.getRuntime().availableProcessors());
    SparkSession spark = SparkSessions.getOrCreate(f.string("master",
        SparkSessions.defaultMaster(2)), "mosaic-bench-io", Map.of());
    try {
      EmbeddingIoBenchmark.run(spark, rows, embed, repeats, out);
    } finally {
      spark.stop();
    }
    return 0;
  }
}
