package dev.mosaic.spark.runner;

import static dev.mosaic.spark.runner.InputColumns.quote;
import static dev.mosaic.spark.runner.SequenceChecks.E;
import static dev.mosaic.spark.runner.SequenceChecks.K;
import static dev.mosaic.spark.runner.SequenceChecks.P;
import static org.apache.spark.sql.functions.broadcast;
import static org.apache.spark.sql.functions.col;

import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.plan.RaggedPlanner;
import dev.mosaic.spark.strategy.Backends;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.catalyst.CatalystTypeConverters;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@link MultiAxisAttention} over the sequences of a DataFrame, sequences of any lengths: those
 * one task can hold run whole in ordinary tasks, packed by cost; longer ones are sharded along
 * their positions over barrier tasks ({@link RaggedPlanner} decides, from
 * {@code spark.mosaic.task.memory}).
 *
 * <p>Input rows are {@code (key, pos, emb)}: the rows that share a sequence key form one sequence,
 * ordered by position. The embedding column is either
 * <ul>
 *   <li>{@code array<float>} of length {@code embedDim}: a sequence of vectors; each sequence is an
 *       {@code (n, embed)} tensor, or
 *   <li>{@code array<array<float>>} of {@code features} arrays of length {@code embedDim}: a table
 *       row; each sequence is an {@code (n, features, embed)} tensor and the features are a batch
 *       dimension (attention runs along the rows, for every feature separately).
 * </ul>
 * Attention runs along axis 0 of each sequence's tensor, the position axis, exactly as
 * {@code MultiAxisAttention.builder(embed, spec.numHeads(), 0).weights(spec.weights())
 * .causal(spec.causal()).build().forward(x, spec.keyLimit())} would do on that tensor alone in
 * one JVM: causal and the key bound apply to each sequence's own positions ({@code keyLimit}:
 * positions {@code >= keyLimit} are hidden as keys). No padding is computed.
 *
 * <p>Grouped-query attention: weights whose {@code in_proj_weight} has {@code E + 2·G·d} rows
 * (G K/V heads of {@code d = E/H}, G dividing H; {@link ShardedAttention.Spec#numKvHeads}), for
 * example Hugging Face-style {@code q_proj/k_proj/v_proj/o_proj} read by
 * {@code SeparateProjections.read}, run GQA in the packed tasks and the barrier stages alike; the
 * planner counts k and v of G heads, and the ring sends only those. The CUDA kernel does not run
 * GQA yet: use the CPU ({@code spark.mosaic.device=cpu}).
 *
 * <p>Requirements, checked on the driver before anything runs, each with an error naming the key,
 * the position and what was expected (an {@link IllegalArgumentException}):
 * <ul>
 *   <li>{@code spec.backend()} is {@code ring} or {@code auto} (the strategy for sharded
 *       sequences: ring, or the planner's choice); {@code spec.weights()} is given (embedDim is
 *       taken from it); {@code spec.axis()} is the position axis: {@code 0} (or the same axis
 *       counted from the end: {@code -2} for {@code array<float>}, {@code -3} for
 *       {@code array<array<float>>});
 *   <li>the key column has an orderable atomic type (numbers, string, binary, boolean, date,
 *       timestamp) and no nulls; sequence {@code i} is the {@code i}-th key in Spark's natural
 *       order ({@code ORDER BY key});
 *   <li>the position column is {@code int} or {@code bigint}; for every key the positions are
 *       exactly {@code 0..n−1} for that key's own {@code n}, without gaps or duplicates;
 *   <li>every embedding has {@code embedDim} floats (in every feature), no null arrays or
 *       elements, and in the nested form every row has the same, non-zero number of features.
 * </ul>
 *
 * <p>Where sequences run ({@link #prepare} returns the plan; it is also logged): a sequence whose
 * attention memory (the planner's single-device formula) fits {@code spark.mosaic.task.memory}
 * goes to one of at most (default parallelism / {@code spark.task.cpus}) ordinary tasks, packed
 * longest-cost-first (cost ∝ n²·h·d) — {@link PackedAttention}. A longer one is sharded over the
 * fewest barrier tasks {@code p <= ctx.spSize()} that fit, with ring (or the planner's pick for
 * {@code auto}); sequences with the same strategy and {@code p} share one barrier stage —
 * {@link ShardedStage}. A sequence that does not fit even {@code spSize} tasks is sharded over
 * {@code spSize} and the plan says so.
 *
 * <p>Output schema: {@code (keyCol, posCol, outCol)}, the key and position with their input names
 * and types, {@code outCol} with the input's nesting ({@code array<float>} or
 * {@code array<array<float>>}); no nulls. Exactly one output row per input row; the row order is
 * not specified. {@link #run} reads the input right away, once, to validate it (one Spark
 * query); the attention runs lazily, once per action on the result, and reads the input again
 * (once per barrier stage, once for the packed tasks): it must give the same rows each time
 * (cache it if it is not deterministic — a task that sees other rows than were validated fails
 * with an {@link IllegalStateException}), and cache the result to use it twice. The result is the
 * union of the packed tasks' rows and each barrier stage's rows, the latter hash-partitioned by
 * (key, position) into {@code p} partitions: that shuffle sits between a barrier stage and
 * whatever runs on the result, so {@code show()}, {@code first()} and {@code limit()} work on it.
 * Other columns of {@code df} are not carried over; join the result back on (key, position) to
 * keep them.
 */
public final class DataFrameAttention {
  private static final System.Logger LOG = System.getLogger(DataFrameAttention.class.getName());
  private static final String KI_KEY = "__mosaic_ki_key";
  private static final String KI_IDX = "__mosaic_ki_idx";

  private DataFrameAttention() {}

  /** The plan (null for an empty input) and the lazy output. */
  public record Prepared(RaggedPlan plan, Dataset<Row> output) {}

  /**
   * Attention along the positions of every sequence of {@code df}; see the class comment.
   *
   * @param keyCol sequence key column (orderable atomic type, no nulls)
   * @param posCol position column ({@code int} or {@code bigint}), {@code 0..n−1} per key
   * @param embCol {@code array<float>} or {@code array<array<float>>} embedding column
   * @param spec heads, causal, keyLimit, weights (they give embedDim), backend {@code ring} or
   *     {@code auto}; axis 0
   * @param outCol name of the output embedding column; must differ from the key and position names
   * @return rows {@code (keyCol, posCol, outCol)}, one per input row; lazy, see the class comment
   */
  public static Dataset<Row> run(MosaicContext ctx, Dataset<Row> df, String keyCol, String posCol,
      String embCol, ShardedAttention.Spec spec, String outCol) {
    return prepare(ctx, df, keyCol, posCol, embCol, spec, outCol).output();
  }

  /** As {@link #run}, and the plan: which sequences run where. */
  public static Prepared prepare(MosaicContext ctx, Dataset<Row> df, String keyCol,
      String posCol, String embCol, ShardedAttention.Spec spec, String outCol) {
    Objects.requireNonNull(ctx, "ctx");
    Objects.requireNonNull(df, "df");
    Objects.requireNonNull(spec, "spec");
    int embed = checkSpec(spec);
    boolean caseSensitive = Boolean.parseBoolean(
        ctx.spark().conf().get("spark.sql.caseSensitive", "false"));
    InputColumns cols = InputColumns.of(df.schema(), keyCol, posCol, embCol, outCol,
        caseSensitive);
    cols.checkAxis(spec.axis());
    StructType outSchema = cols.outputSchema(outCol);

    Dataset<Row> in = df.select(col(quote(cols.key().name())).as(K),
        col(quote(cols.pos().name())).as(P), col(quote(cols.emb().name())).as(E));
    SequenceChecks.Names names = new SequenceChecks.Names(cols.key().name(), cols.pos().name(),
        cols.emb().name(), embed);
    List<Row> stats = SequenceChecks.stats(in, cols.nested(), embed);
    if (stats.isEmpty()) {
      return new Prepared(null, ctx.spark().createDataFrame(List.<Row>of(), outSchema));
    }
    int features = SequenceChecks.validate(in, stats, names, cols.nested());
    int numKeys = stats.size();
    Object[] keys = new Object[numKeys];
    long[] lengths = new long[numKeys];
    for (int i = 0; i < numKeys; i++) {
      keys[i] = stats.get(i).get(0);
      lengths[i] = stats.get(i).getLong(1);
    }
    RaggedPlan plan = RaggedPlanner.plan(lengths, new RaggedPlanner.Settings(spec.numHeads(),
        embed / spec.numHeads(), Math.max(1, features), spec.causal(), spec.keyLimit(),
        ctx.config().taskMemory(), ctx.spSize(), slots(ctx), spec.backend(),
        spec.numKvHeads()));
    LOG.log(System.Logger.Level.INFO, plan.describe());
    Object[] catalystKeys = new Object[numKeys];
    scala.Function1<Object, Object> toCatalyst =
        CatalystTypeConverters.createToCatalystConverter(cols.key().dataType());
    for (int i = 0; i < numKeys; i++) {
      catalystKeys[i] = toCatalyst.apply(keys[i]);
    }
    SequenceRows rows = new SequenceRows(keys, catalystKeys, lengths, cols.nested(), features,
        embed, cols.longPos(), names);

    // Key → sequence index, in key order, joined by Spark (its own equality for every key type).
    List<Row> index = new ArrayList<>(numKeys);
    for (int i = 0; i < numKeys; i++) {
      index.add(RowFactory.create(keys[i], i));
    }
    Dataset<Row> keyIndex = ctx.spark().createDataFrame(index, new StructType()
        .add(KI_KEY, cols.key().dataType(), false)
        .add(KI_IDX, DataTypes.IntegerType, false));
    // Spark's internal rows, not javaRDD(): that would box every float of every embedding.
    JavaRDD<SequenceRows.Cell> cells = in
        .join(broadcast(keyIndex), in.col(K).equalTo(keyIndex.col(KI_KEY)))
        .select(col(KI_IDX), col(P), col(E))
        .queryExecution().toRdd().toJavaRDD()
        .map(rows::toCell);

    Dataset<Row> out = null;
    if (!plan.tasks().isEmpty()) {
      out = InternalFrames.of(ctx.spark(), PackedAttention.run(cells, plan.packedTask(),
          plan.tasks().size(), rows, spec, ctx.config()), outSchema);
    }
    for (RaggedPlan.Stage stage : plan.stages()) {
      // A shuffle right after the barrier stage makes it a shuffle map stage that always runs
      // all of its tasks: take(), first(), show() and limit() on the result compute only some
      // partitions of their stage, which Spark refuses for a barrier stage
      // (BarrierJobUnsupportedRDDChainException); it also keeps the packed tasks out of the
      // barrier stage. Spark retries a failed barrier shuffle map stage as a whole, where a
      // failed barrier result stage fails the job.
      Dataset<Row> sharded = InternalFrames.of(ctx.spark(),
          ShardedStage.run(cells, stage, rows, spec, ctx.config()), outSchema)
          .repartition(stage.tasks(), col(quote(cols.key().name())),
              col(quote(cols.pos().name())));
      out = out == null ? sharded : out.union(sharded);
    }
    return new Prepared(plan, out);
  }

  /** Ordinary tasks that run at once: the default parallelism over the cores per task. */
  private static int slots(MosaicContext ctx) {
    int cpus = Math.max(1, ctx.spark().sparkContext().getConf().getInt("spark.task.cpus", 1));
    return Math.max(1, ctx.spark().sparkContext().defaultParallelism() / cpus);
  }

  private static int checkSpec(ShardedAttention.Spec spec) {
    Backends.check(spec.backend());
    if (!Backends.RING.equals(spec.backend()) && !Backends.AUTO.equals(spec.backend())) {
      throw new IllegalArgumentException("DataFrameAttention shards long sequences with backend '"
          + Backends.RING + "' or '" + Backends.AUTO + "' (the planner's choice), got"
          + " spec.backend '" + spec.backend() + "'");
    }
    AttentionWeights w = spec.weights();
    if (w == null) {
      throw new IllegalArgumentException(
          "spec.weights() is required: DataFrameAttention takes embedDim from it");
    }
    int embed = w.outProjBias().dim(0);
    if (spec.numHeads() <= 0) {
      throw new IllegalArgumentException("numHeads must be positive, got " + spec.numHeads());
    }
    if (embed % spec.numHeads() != 0) {
      throw new IllegalArgumentException("embedDim " + embed + " is not divisible by numHeads "
          + spec.numHeads() + " (each head gets embedDim/numHeads features)");
    }
    checkKvHeads(w, embed, spec.numHeads());
    w.validate(embed, spec.numKvHeads() * (embed / spec.numHeads()), "");
    return embed;
  }

  /**
   * The k/v part of {@code in_proj_weight} is G·d rows each for G K/V heads dividing numHeads
   * (G = numHeads: multi-head attention); anything else is one line naming the tensor.
   */
  private static void checkKvHeads(AttentionWeights w, int embed, int heads) {
    int d = embed / heads;
    int kv = w.kvDim();
    if (kv <= 0 || kv % d != 0 || kv > embed || heads % (kv / d) != 0) {
      throw new IllegalArgumentException("weight '" + AttentionWeights.IN_PROJ_WEIGHT
          + "' has shape " + java.util.Arrays.toString(w.inProjWeight().shape()) + ", expected ["
          + embed + " + 2·G·" + d + ", " + embed + "] for numHeads " + heads + " of " + d
          + " features and G K/V heads dividing " + heads + " (G = " + heads + ": ["
          + 3 * embed + ", " + embed + "])");
    }
  }
}
