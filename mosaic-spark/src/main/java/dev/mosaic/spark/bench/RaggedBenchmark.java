package dev.mosaic.spark.bench;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.explode;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.sequence;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.runner.DataFrameAttention;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedAttention;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code mosaic bench ragged}: one table of sequences with log-uniform lengths through
 * {@link DataFrameAttention} three ways, in one session: the packed plan (ordinary tasks, one
 * varlen kernel call per task), every sequence padded to the longest (measured in full: S
 * sequences of the longest length, the work a batch without varlen does), and one barrier stage
 * per sequence. Only the last is estimated: its calls each pay a barrier stage's fixed cost
 * (seconds), so a random sample's calls × S / sample size stands for all S; the output says so.
 * Wall time of the whole call (validation, shuffle, attention, collecting the row count) counts
 * for all three, after one untimed warm-up call; tokens/s counts the table's real tokens. The
 * packed and padded calls alternate over several rounds and their medians count.
 */
public final class RaggedBenchmark {

  /** What to run. */
  public record Settings(int sequences, int minLength, int maxLength, int heads, int headDim,
      boolean causal, int sample, int repeats, long seed) {}

  /** One method's measurement; {@code estimated} when scaled up from a sample. */
  public record Row3(String method, double seconds, long tokens, boolean estimated) {
    public double tokensPerSecond() {
      return tokens / seconds;
    }
  }

  private RaggedBenchmark() {}

  /** Lengths log-uniform in [min, max], the longest always present (padding pads to it). */
  public static int[] lengths(Settings s) {
    Random rnd = new Random(s.seed());
    int[] n = new int[s.sequences()];
    double lo = Math.log(s.minLength());
    double hi = Math.log(s.maxLength());
    for (int i = 0; i < n.length; i++) {
      n[i] = (int) Math.min(s.maxLength(), Math.round(Math.exp(lo + rnd.nextDouble() * (hi - lo))));
    }
    n[rnd.nextInt(n.length)] = s.maxLength();
    return n;
  }

  public static List<Row3> run(MosaicContext ctx, Settings s, PrintStream out) {
    int[] lengths = lengths(s);
    long tokens = Arrays.stream(lengths).asLongStream().sum();
    double cells = Arrays.stream(lengths).mapToDouble(n -> (double) n * n).sum();
    int embed = s.heads() * s.headDim();
    out.printf("ragged table: %d sequences, lengths log-uniform %d..%d, %d tokens, sum n^2 %.3g,"
        + " %d heads x %d, %s; one-stage baseline from a sample of %d sequences%n", s.sequences(),
        s.minLength(), s.maxLength(), tokens, cells, s.heads(), s.headDim(),
        s.causal() ? "causal" : "full", s.sample());
    long paddedRows = (long) s.sequences() * s.maxLength();
    out.printf("  padded: %d rows (%.1fx the tokens), %.3g score cells (%.1fx sum n^2)%n",
        paddedRows, (double) paddedRows / tokens, (double) paddedRows * s.maxLength(),
        (double) paddedRows * s.maxLength() / cells);
    Random rnd = new Random(s.seed() ^ 0x5eed);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.2f, 3 * embed, embed),
        Tensor.randn(rnd, 0.1f, 3 * embed), Tensor.randn(rnd, 0.2f, embed, embed),
        Tensor.randn(rnd, 0.1f, embed));
    ShardedAttention.Spec spec = new ShardedAttention.Spec(s.heads(), 0, s.causal(),
        Long.MAX_VALUE, w, "ring");
    int[] sample = sample(lengths.length, Math.min(s.sample(), lengths.length), rnd);
    long sampleTokens = Arrays.stream(sample).mapToLong(i -> lengths[i]).sum();
    double scale = (double) lengths.length / sample.length;
    List<Row3> rows = new ArrayList<>();

    // One untimed call first: the first Spark job and the JIT's warm-up go to none of the three.
    Dataset<Row> tiny = table(ctx, new int[] {0}, new int[] {s.minLength()}, embed).cache();
    time(ctx, tiny, spec, null, null);
    tiny.unpersist();

    // Packed and padded alternate (packed first in even rounds, padded first in odd ones) and
    // repeat; each method's median counts. Run once after the other, the first method measured
    // took the JIT's first large calls and whatever the machine's load did meanwhile.
    Dataset<Row> table = table(ctx, keysOf(lengths), lengths, embed).cache();
    table.count();
    // Padded: every sequence at the longest length, all of them, as a batch without varlen
    // computes it (the padded rows are converted, projected and attended like real ones).
    int[] padded = new int[lengths.length];
    Arrays.fill(padded, s.maxLength());
    Dataset<Row> pad = table(ctx, keysOf(lengths), padded, embed).cache();
    pad.count();
    String paddedName = lengths.length + " sequences padded to " + s.maxLength();
    double[] packedTimes = new double[s.repeats()];
    double[] paddedTimes = new double[s.repeats()];
    for (int r = 0; r < s.repeats(); r++) {
      String round = " (round " + (r + 1) + "/" + s.repeats() + ")";
      if (r % 2 == 0) {
        packedTimes[r] = time(ctx, table, spec, out, "packed plan" + round);
        paddedTimes[r] = time(ctx, pad, spec, out, paddedName + round);
      } else {
        paddedTimes[r] = time(ctx, pad, spec, out, paddedName + round);
        packedTimes[r] = time(ctx, table, spec, out, "packed plan" + round);
      }
    }
    table.unpersist();
    pad.unpersist();
    rows.add(new Row3("packed plan (varlen, ordinary tasks)", median(packedTimes), tokens, false));
    rows.add(new Row3("padded to the longest", median(paddedTimes), tokens, false));

    MosaicContext oneStage = ctx.with(MosaicConfig.TASK_MEMORY, "1"); // nothing fits a task
    Dataset<Row> sampled = table(ctx, sample, sampleLengths(sample, lengths), embed).cache();
    sampled.count();
    double stages = 0;
    for (int key : sample) {
      stages += time(oneStage, sampled.filter(col("key").equalTo(key)), spec, null, null);
    }
    sampled.unpersist();
    out.printf("  one barrier stage each: %d sequences (%d tokens) in %.2f s%n", sample.length,
        sampleTokens, stages);
    rows.add(new Row3("one barrier stage per sequence", stages * scale, tokens, true));
    print(rows, out);
    return rows;
  }

  public static void print(List<Row3> rows, PrintStream out) {
    double packed = rows.get(0).seconds();
    out.printf("%-40s %10s %12s %10s%n", "method", "seconds", "tokens/s", "vs packed");
    // seconds: the median of the rounds for packed and padded; tokens/s counts real tokens only.
    for (Row3 r : rows) {
      out.printf("%-40s %10.2f %12.0f %9.1fx%s%n", r.method(), r.seconds(), r.tokensPerSecond(),
          r.seconds() / packed, r.estimated() ? "  (estimated from the sample)" : "");
    }
  }

  /** The median (the mean of the middle two for an even count). */
  static double median(double[] values) {
    double[] v = values.clone();
    Arrays.sort(v);
    int m = v.length / 2;
    return v.length % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
  }

  /** Times one DataFrameAttention call through to every output row. */
  private static double time(MosaicContext ctx, Dataset<Row> df, ShardedAttention.Spec spec,
      PrintStream out, String what) {
    long t0 = System.nanoTime();
    DataFrameAttention.Prepared p =
        DataFrameAttention.prepare(ctx, df, "key", "pos", "emb", spec, "y");
    long count = p.output().count();
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (out != null) {
      RaggedPlan plan = p.plan();
      out.printf("  %s: %d rows in %.2f s (%d ordinary tasks, %d barrier stages)%n", what, count,
          seconds, plan.tasks().size(), plan.stages().size());
    }
    return seconds;
  }

  /** Key {@code i} (or {@code keys[i]}) with {@code lengths[i]} positions; embeddings from a
   * cheap deterministic formula, computed by Spark. */
  private static Dataset<Row> table(MosaicContext ctx, int[] keys, int[] lengths, int embed) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < lengths.length; i++) {
      rows.add(RowFactory.create(keys[i], lengths[i]));
    }
    Dataset<Row> lens = ctx.spark().createDataFrame(rows, new StructType()
        .add("key", DataTypes.IntegerType, false).add("n", DataTypes.IntegerType, false));
    return lens.select(col("key"), explode(sequence(lit(0), col("n").minus(1))).as("pos"))
        .withColumn("emb", expr("transform(sequence(0, " + (embed - 1) + "), i -> cast(sin(key *"
            + " 0.37D + pos * 0.011D + i * 1.3D) as float))"))
        .repartition(ctx.spark().sparkContext().defaultParallelism());
  }

  private static int[] keysOf(int[] lengths) {
    int[] keys = new int[lengths.length];
    Arrays.setAll(keys, i -> i);
    return keys;
  }

  private static int[] sampleLengths(int[] sample, int[] lengths) {
    return Arrays.stream(sample).map(i -> lengths[i]).toArray();
  }

  /** {@code m} distinct indices of {@code [0, n)}, uniformly at random. */
  private static int[] sample(int n, int m, Random rnd) {
    int[] all = new int[n];
    Arrays.setAll(all, i -> i);
    for (int i = 0; i < m; i++) {
      int j = i + rnd.nextInt(n - i);
      int t = all[i];
      all[i] = all[j];
      all[j] = t;
    }
    int[] out = Arrays.copyOf(all, m);
    Arrays.sort(out);
    return out;
  }
}
