package dev.mosaic.spark.runner;

import static org.apache.spark.sql.functions.broadcast;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.countDistinct;
import static org.apache.spark.sql.functions.exists;
import static org.apache.spark.sql.functions.lead;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.max;
import static org.apache.spark.sql.functions.min;
import static org.apache.spark.sql.functions.size;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;
import scala.Tuple2;
import scala.collection.Seq;

/**
 * {@link MultiAxisAttention} over the sequences of a DataFrame, sharded along the sequence over
 * {@code ctx.spSize()} barrier tasks with ring attention.
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
 * .causal(spec.causal()).build().forward(x, spec.keyLimit())} would do on that tensor in one JVM:
 * causal and the key bound apply to the positions ({@code keyLimit}: positions {@code >= keyLimit}
 * are hidden as keys).
 *
 * <p>Requirements, checked on the driver before anything runs, each with an error naming the key,
 * the position and what was expected (an {@link IllegalArgumentException}):
 * <ul>
 *   <li>{@code spec.backend()} is {@code ring}; {@code spec.weights()} is given (embedDim is taken
 *       from it); {@code spec.axis()} is the position axis: {@code 0} (or the same axis counted
 *       from the end: {@code -2} for {@code array<float>}, {@code -3} for
 *       {@code array<array<float>>});
 *   <li>the key column has an orderable atomic type (numbers, string, binary, boolean, date,
 *       timestamp) and no nulls; sequences are ordered by Spark's natural order of the key
 *       ({@code ORDER BY key}) and that order is the batch order inside every task;
 *   <li>the position column is {@code int} or {@code bigint}; for every key the positions are
 *       exactly {@code 0..n−1}, without gaps or duplicates, and every key has the same {@code n};
 *   <li>every embedding has {@code embedDim} floats (in every feature), no null arrays or
 *       elements, and in the nested form every row has the same, non-zero number of features;
 *   <li>every one of the {@code spSize} shards gets at least one position.
 * </ul>
 *
 * <p>Positions are cut into {@code spSize} shards with {@link ShardLayout}: contiguous, or zigzag
 * when {@code spec.causal()} (so every task does the same work). Rows reach their shard's task
 * through Spark's shuffle ({@link IndexPartitioner}); task {@code r} assembles the block
 * {@code (numKeys, localPositions[, features], embed)}, runs the layer with a
 * {@link RingStrategy} over the task's communicator along the position axis, and returns one row
 * per input row.
 *
 * <p>Output schema: {@code (keyCol, posCol, outCol)}, the key and position with their input names
 * and types, {@code outCol} with the input's nesting ({@code array<float>} or
 * {@code array<array<float>>}); no nulls. Exactly one output row per input row; the row order is
 * not specified. {@link #run} reads the input right away, once, to validate it (one Spark
 * query); the attention runs lazily, once per action on the result, and reads the input again: it
 * must give the same rows each time (cache it if it is not deterministic — a task that sees other
 * rows than were validated fails with an {@link IllegalStateException}), and cache the result to
 * use it twice. The result is hash-partitioned by (key, position) into {@code spSize} partitions:
 * that shuffle sits between the barrier stage and whatever runs on the result, so {@code show()},
 * {@code first()} and {@code limit()} work on it. Other columns of {@code df} are not carried
 * over; join the result back on (key, position) to keep them.
 */
public final class DataFrameAttention {
  /** Internal column names of the normalised input. */
  private static final String K = "__mosaic_key";
  private static final String P = "__mosaic_pos";
  private static final String E = "__mosaic_emb";
  private static final String KI_KEY = "__mosaic_ki_key";
  private static final String KI_IDX = "__mosaic_ki_idx";
  /** How many keys an error lists per group before "and N more". */
  private static final int KEYS_SHOWN = 5;
  private static final String POSITIONS_RULE = "positions must be 0..n-1 without gaps or"
      + " duplicates";

  private DataFrameAttention() {}

  /**
   * Attention along the positions of every sequence of {@code df}; see the class comment.
   *
   * @param keyCol sequence key column (orderable atomic type, no nulls)
   * @param posCol position column ({@code int} or {@code bigint}), {@code 0..n−1} per key
   * @param embCol {@code array<float>} or {@code array<array<float>>} embedding column
   * @param spec heads, causal, keyLimit, weights (they give embedDim), backend {@code ring}; axis 0
   * @param outCol name of the output embedding column; must differ from the key and position names
   * @return rows {@code (keyCol, posCol, outCol)}, one per input row; lazy, see the class comment
   */
  public static Dataset<Row> run(MosaicContext ctx, Dataset<Row> df, String keyCol, String posCol,
      String embCol, ShardedAttention.Spec spec, String outCol) {
    Objects.requireNonNull(ctx, "ctx");
    Objects.requireNonNull(df, "df");
    Objects.requireNonNull(spec, "spec");
    Objects.requireNonNull(outCol, "outCol");
    int embed = checkSpec(spec);
    boolean caseSensitive = Boolean.parseBoolean(
        ctx.spark().conf().get("spark.sql.caseSensitive", "false"));
    StructField keyField = field(df.schema(), keyCol, "key", caseSensitive);
    StructField posField = field(df.schema(), posCol, "position", caseSensitive);
    StructField embField = field(df.schema(), embCol, "embedding", caseSensitive);
    checkKeyType(keyField);
    boolean longPos = positionIsLong(posField);
    boolean nested = embeddingIsNested(embField);
    checkNames(keyField.name(), posField.name(), outCol);
    checkAxis(spec.axis(), nested);

    Dataset<Row> in = df.select(col(quote(keyField.name())).as(K),
        col(quote(posField.name())).as(P), col(quote(embField.name())).as(E));
    Names names = new Names(keyField.name(), posField.name(), embField.name(), embed);
    Column bad = badEmbedding(nested, embed);
    List<Row> stats = in.groupBy(col(K)).agg(count(lit(1)), count(col(P)), countDistinct(col(P)),
            min(col(P)), max(col(P)), sum(when(bad, 1).otherwise(0)), min(size(col(E))),
            max(size(col(E))))
        // One sorted partition: the keys come to the driver anyway, and a global ORDER BY would
        // cost a sampling job for its range partitioner.
        .coalesce(1).sortWithinPartitions(col(K)).collectAsList();

    StructType outSchema = new StructType()
        .add(keyField.name(), keyField.dataType(), false)
        .add(posField.name(), posField.dataType(), false)
        .add(outCol, nested
            ? DataTypes.createArrayType(DataTypes.createArrayType(DataTypes.FloatType, false),
                false)
            : DataTypes.createArrayType(DataTypes.FloatType, false), false);
    if (stats.isEmpty()) {
      return ctx.spark().createDataFrame(List.<Row>of(), outSchema);
    }
    int features = validate(in, stats, names, nested);
    long n = stats.get(0).getLong(1);
    int numKeys = stats.size();
    int sp = ctx.spSize();
    ShardLayout layout = layoutFor(n, sp, spec.causal());
    checkShards(layout, n, sp, spec.causal());
    long largest = 0;
    for (int r = 0; r < sp; r++) {
      largest = Math.max(largest, layout.size(r));
    }
    long qkv = 3L * numKeys * largest * Math.max(1, features) * embed;
    if (qkv > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("a shard would hold " + numKeys + " sequences x "
          + largest + " positions" + (nested ? " x " + features + " features" : "") + " x embed "
          + embed + ", and its q/k/v projection " + qkv + " floats, more than 2^31 - 8: use more"
          + " shards (spSize) or fewer keys per call");
    }

    // Key → batch index, in key order, joined by Spark (its own equality for every key type).
    Object[] keys = new Object[numKeys];
    List<Row> index = new ArrayList<>(numKeys);
    for (int i = 0; i < numKeys; i++) {
      keys[i] = stats.get(i).get(0);
      index.add(RowFactory.create(keys[i], i));
    }
    Dataset<Row> keyIndex = ctx.spark().createDataFrame(index, new StructType()
        .add(KI_KEY, keyField.dataType(), false)
        .add(KI_IDX, DataTypes.IntegerType, false));
    Router router = Router.of(layout);
    Plan plan = new Plan(layout, router, keys, nested, features, embed, longPos, spec, names);
    JavaRDD<Cell> sharded = in.join(broadcast(keyIndex), in.col(K).equalTo(keyIndex.col(KI_KEY)))
        .select(col(KI_IDX), col(P), col(E))
        .javaRDD()
        .mapToPair(row -> {
          Cell c = toCell(row, plan);
          return new Tuple2<>(router.shard(c.pos()), c);
        })
        .partitionBy(new IndexPartitioner(sp))
        .values();
    ShardFunction<Cell, Row> fn = (env, cells) -> runShard(env, cells, plan);
    JavaRDD<Row> out = BarrierRunner.run(sharded, fn, ctx.config(), spec.device(), Row.class);
    // A shuffle right after the barrier stage makes it a shuffle map stage that always runs all
    // of its tasks: take(), first(), show() and limit() on the result compute only some partitions
    // of their stage, which Spark refuses for a barrier stage
    // (BarrierJobUnsupportedRDDChainException). Spark also retries a failed barrier shuffle map
    // stage as a whole, where a failed barrier result stage fails the job.
    return ctx.spark().createDataFrame(out, outSchema)
        .repartition(sp, col(quote(keyField.name())), col(quote(posField.name())));
  }

  // ---------------------------------------------------------------- driver-side checks

  private static int checkSpec(ShardedAttention.Spec spec) {
    Backends.check(spec.backend());
    if (!Backends.RING.equals(spec.backend())) {
      throw new IllegalArgumentException("DataFrameAttention shards positions over Spark tasks and"
          + " runs backend '" + Backends.RING + "', got spec.backend '" + spec.backend() + "'");
    }
    AttentionWeights w = spec.weights();
    if (w == null) {
      throw new IllegalArgumentException(
          "spec.weights() is required: DataFrameAttention takes embedDim from it");
    }
    int embed = w.outProjBias().dim(0);
    w.validate(embed, "");
    if (spec.numHeads() <= 0) {
      throw new IllegalArgumentException("numHeads must be positive, got " + spec.numHeads());
    }
    if (embed % spec.numHeads() != 0) {
      throw new IllegalArgumentException("embedDim " + embed + " is not divisible by numHeads "
          + spec.numHeads() + " (each head gets embedDim/numHeads features)");
    }
    return embed;
  }

  private static StructField field(StructType schema, String name, String role,
      boolean caseSensitive) {
    Objects.requireNonNull(name, role + " column name");
    StructField found = null;
    for (StructField f : schema.fields()) {
      if (f.name().equals(name)) {
        return f;
      }
    }
    int matches = 0;
    if (!caseSensitive) {
      for (StructField f : schema.fields()) {
        if (f.name().equalsIgnoreCase(name)) {
          found = f;
          matches++;
        }
      }
    }
    if (matches != 1) {
      throw new IllegalArgumentException(role + " column '" + name + "' "
          + (matches > 1 ? "is ambiguous" : "is not there") + "; the DataFrame has columns "
          + Arrays.toString(schema.fieldNames()));
    }
    return found;
  }

  private static void checkKeyType(StructField f) {
    DataType t = f.dataType();
    boolean ok = t instanceof NumericType || t instanceof StringType || t instanceof BinaryType
        || t instanceof BooleanType || t instanceof DateType || t instanceof TimestampType
        || t instanceof TimestampNTZType;
    if (!ok) {
      throw new IllegalArgumentException("key column '" + f.name() + "' has type "
          + t.simpleString() + ", expected an orderable atomic type (number, string, binary,"
          + " boolean, date, timestamp)");
    }
  }

  private static boolean positionIsLong(StructField f) {
    if (f.dataType() instanceof LongType) {
      return true;
    }
    if (f.dataType() instanceof IntegerType) {
      return false;
    }
    throw new IllegalArgumentException("position column '" + f.name() + "' has type "
        + f.dataType().simpleString() + ", expected int or bigint");
  }

  private static boolean embeddingIsNested(StructField f) {
    if (f.dataType() instanceof ArrayType a) {
      if (a.elementType() instanceof FloatType) {
        return false;
      }
      if (a.elementType() instanceof ArrayType b && b.elementType() instanceof FloatType) {
        return true;
      }
    }
    throw new IllegalArgumentException("embedding column '" + f.name() + "' has type "
        + f.dataType().simpleString() + ", expected array<float> (a sequence of vectors) or"
        + " array<array<float>> (rows of (features, embed))");
  }

  private static void checkNames(String key, String pos, String out) {
    if (key.equalsIgnoreCase(pos)) {
      throw new IllegalArgumentException(
          "key column '" + key + "' and position column '" + pos + "' must differ");
    }
    if (out.equalsIgnoreCase(key) || out.equalsIgnoreCase(pos)) {
      throw new IllegalArgumentException("output column '" + out + "' must differ from the key"
          + " column '" + key + "' and the position column '" + pos + "'");
    }
  }

  private static void checkAxis(int axis, boolean nested) {
    int rank = nested ? 3 : 2;
    int a = axis < 0 ? axis + rank : axis;
    if (a != 0) {
      throw new IllegalArgumentException("spec.axis must be the position axis 0 (or " + (-rank)
          + ") of each sequence's (positions" + (nested ? ", features" : "") + ", embed) tensor,"
          + " got " + axis);
    }
  }

  /** Column names and embedDim, for messages and task-side checks. */
  private record Names(String key, String pos, String emb, int embed) implements Serializable {}

  /**
   * Checks the per-key statistics (key order) and, on a problem, finds the first offending row
   * with one more query. Returns the number of features (0 for {@code array<float>}).
   */
  private static int validate(Dataset<Row> in, List<Row> stats, Names names, boolean nested) {
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
    Map<Long, List<Object>> byLength = new LinkedHashMap<>();
    for (Row s : stats) {
      byLength.computeIfAbsent(s.getLong(1), x -> new ArrayList<>()).add(s.get(0));
    }
    if (byLength.size() > 1) {
      List<String> groups = new ArrayList<>();
      for (Map.Entry<Long, List<Object>> g : byLength.entrySet()) {
        List<Object> ks = g.getValue();
        List<String> shown = new ArrayList<>();
        for (int i = 0; i < Math.min(KEYS_SHOWN, ks.size()); i++) {
          shown.add(show(ks.get(i)));
        }
        groups.add(g.getKey() + " positions (key" + (ks.size() > 1 ? "s " : " ")
            + String.join(", ", shown)
            + (ks.size() > KEYS_SHOWN ? " and " + (ks.size() - KEYS_SHOWN) + " more" : "") + ")");
      }
      throw new IllegalArgumentException("every sequence must have the same length, but key"
          + " column '" + names.key() + "' has sequences of " + byLength.size()
          + " different lengths: " + String.join(", ", groups));
    }
    return features;
  }

  /**
   * True for a malformed embedding: null, a length other than {@code embed}, a null element; in
   * the nested form also no features or a null feature. (The feature count is checked apart.)
   */
  private static Column badEmbedding(boolean nested, int embed) {
    Column e = col(E);
    return nested
        ? e.isNull().or(size(e).equalTo(0)).or(exists(e, a -> a.isNull()
            .or(size(a).notEqual(embed)).or(exists(a, x -> x.isNull()))))
        : e.isNull().or(size(e).notEqual(embed)).or(exists(e, x -> x.isNull()));
  }

  private static ShardLayout layoutFor(long n, int sp, boolean causal) {
    return causal && sp > 1 ? ShardLayout.zigzag(n, sp) : ShardLayout.contiguous(n, sp);
  }

  private static void checkShards(ShardLayout layout, long n, int sp, boolean causal) {
    for (int r = 0; r < sp; r++) {
      if (layout.size(r) == 0) {
        int most = sp;
        while (most > 1 && !allNonEmpty(layoutFor(n, most, causal))) {
          most--;
        }
        throw new IllegalArgumentException("every sequence has " + n + " positions, too few for"
            + " spSize " + sp + ": shard " + r + " of the " + (causal ? "zigzag" : "contiguous")
            + " layout would hold no position; use at most " + most + " shards");
      }
    }
  }

  private static boolean allNonEmpty(ShardLayout layout) {
    for (int r = 0; r < layout.parts(); r++) {
      if (layout.size(r) == 0) {
        return false;
      }
    }
    return true;
  }

  // ---------------------------------------------------------------- rows ↔ shards

  /** A key as it appears in messages: strings quoted, binary as hex. */
  private static String show(Object key) {
    if (key instanceof String s) {
      return "'" + s + "'";
    }
    if (key instanceof byte[] b) {
      return "0x" + HexFormat.of().formatHex(b);
    }
    return String.valueOf(key);
  }

  private static String where(Object key, Object pos) {
    return "key " + show(key) + " position " + pos;
  }

  /**
   * What is wrong with one embedding value, or null when it is well formed: {@code embed} floats,
   * or for the nested form {@code features} arrays of them ({@code features < 0}: any number > 0).
   */
  private static String describe(Object value, boolean nested, int features, Names names) {
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

  /** One input row on its way to its shard: batch index, global position, the floats. */
  private record Cell(int key, long pos, float[] values) implements Serializable {}

  /** Everything a task needs; shipped in the closure. */
  private record Plan(ShardLayout layout, Router router, Object[] keys, boolean nested,
      int features, int embed, boolean longPos, ShardedAttention.Spec spec, Names names)
      implements Serializable {
    int rowFloats() {
      return (nested ? features : 1) * embed;
    }
  }

  private static final String CHANGED = " (the input gave other rows than run() validated:"
      + " make it deterministic, for example cache it)";

  private static Cell toCell(Row row, Plan plan) {
    int key = row.getInt(0);
    long pos = ((Number) row.get(1)).longValue();
    Object value = row.get(2);
    String problem = describe(value, plan.nested(), plan.features(), plan.names());
    if (problem != null) {
      throw new IllegalStateException(where(plan.keys()[key], pos) + ": embedding column '"
          + plan.names().emb() + "' " + problem + CHANGED);
    }
    if (pos < 0 || pos >= plan.layout().total()) {
      throw new IllegalStateException(where(plan.keys()[key], pos) + ": position outside 0.."
          + (plan.layout().total() - 1) + CHANGED);
    }
    float[] values = new float[plan.rowFloats()];
    Seq<?> outer = (Seq<?>) value;
    if (plan.nested()) {
      int e = plan.embed();
      for (int j = 0; j < plan.features(); j++) {
        Seq<?> inner = (Seq<?>) outer.apply(j);
        for (int i = 0; i < e; i++) {
          values[j * e + i] = (Float) inner.apply(i);
        }
      }
    } else {
      for (int i = 0; i < values.length; i++) {
        values[i] = (Float) outer.apply(i);
      }
    }
    return new Cell(key, pos, values);
  }

  /** Global position → (rank, local row), from the layout's segments. */
  private record Router(long[] starts, int[] ranks, int[] locals) implements Serializable {
    static Router of(ShardLayout layout) {
      List<long[]> segs = new ArrayList<>();
      for (int r = 0; r < layout.parts(); r++) {
        int local = 0;
        for (ShardLayout.Segment s : layout.segments(r)) {
          if (s.length() > 0) {
            segs.add(new long[] {s.start(), r, local});
          }
          local += s.length();
        }
      }
      segs.sort((a, b) -> Long.compare(a[0], b[0]));
      long[] starts = new long[segs.size()];
      int[] ranks = new int[segs.size()];
      int[] locals = new int[segs.size()];
      for (int i = 0; i < segs.size(); i++) {
        starts[i] = segs.get(i)[0];
        ranks[i] = (int) segs.get(i)[1];
        locals[i] = (int) segs.get(i)[2];
      }
      return new Router(starts, ranks, locals);
    }

    private int segment(long pos) {
      int i = Arrays.binarySearch(starts, pos);
      return i >= 0 ? i : -i - 2;
    }

    int shard(long pos) {
      return ranks[segment(pos)];
    }

    int localRow(long pos) {
      int i = segment(pos);
      return locals[i] + (int) (pos - starts[i]);
    }
  }

  private static Iterator<Row> runShard(TaskEnv env, Iterator<Cell> cells, Plan plan) {
    int rank = env.rank();
    int numKeys = plan.keys().length;
    int local = plan.layout().size(rank);
    int rowFloats = plan.rowFloats();
    float[] data = new float[Math.multiplyExact(Math.multiplyExact(numKeys, local), rowFloats)];
    BitSet filled = new BitSet(numKeys * local);
    while (cells.hasNext()) {
      Cell c = cells.next();
      if (plan.router().shard(c.pos()) != rank) {
        throw new IllegalStateException("shard " + rank + " received "
            + where(plan.keys()[c.key()], c.pos()) + ", which belongs to shard "
            + plan.router().shard(c.pos()));
      }
      int slot = c.key() * local + plan.router().localRow(c.pos());
      if (filled.get(slot)) {
        throw new IllegalStateException("shard " + rank + " received "
            + where(plan.keys()[c.key()], c.pos()) + " twice" + CHANGED);
      }
      filled.set(slot);
      System.arraycopy(c.values(), 0, data, slot * rowFloats, rowFloats);
    }
    List<ShardLayout.Segment> segs = plan.layout().segments(rank);
    int missing = filled.nextClearBit(0);
    if (missing < numKeys * local) {
      throw new IllegalStateException("shard " + rank + " did not receive "
          + where(plan.keys()[missing / local], globalPos(segs, missing % local)) + CHANGED);
    }
    Tensor x = plan.nested() ? Tensor.of(data, numKeys, local, plan.features(), plan.embed())
        : Tensor.of(data, numKeys, local, plan.embed());
    ShardedAttention.Spec spec = plan.spec();
    int threads = env.config().taskThreads();
    Tensor y;
    try (AttentionKernel kernel = env.kernel(threads);
        MultiAxisAttention layer = MultiAxisAttention.builder(plan.embed(), spec.numHeads(), 1)
            .weights(spec.weights()).causal(spec.causal()).threads(threads)
            .strategy(new RingStrategy(env.comm(), plan.layout(), kernel)).build()) {
      y = layer.forward(x, spec.keyLimit());
    }
    float[] out = y.data();
    int e = plan.embed();
    List<Row> rows = new ArrayList<>(numKeys * local);
    for (int k = 0; k < numKeys; k++) {
      int lr = 0;
      for (ShardLayout.Segment s : segs) {
        for (int i = 0; i < s.length(); i++, lr++) {
          long pos = s.start() + i;
          int off = (k * local + lr) * rowFloats;
          Object emb;
          if (plan.nested()) {
            float[][] m = new float[plan.features()][];
            for (int j = 0; j < m.length; j++) {
              m[j] = Arrays.copyOfRange(out, off + j * e, off + (j + 1) * e);
            }
            emb = m;
          } else {
            emb = Arrays.copyOfRange(out, off, off + e);
          }
          rows.add(RowFactory.create(plan.keys()[k],
              plan.longPos() ? (Object) pos : (Object) Math.toIntExact(pos), emb));
        }
      }
    }
    return rows.iterator();
  }

  private static long globalPos(List<ShardLayout.Segment> segs, int localRow) {
    int lr = localRow;
    for (ShardLayout.Segment s : segs) {
      if (lr < s.length()) {
        return s.start() + lr;
      }
      lr -= s.length();
    }
    throw new IllegalStateException("local row " + localRow + " outside the shard");
  }

  /** A column name quoted for {@code col()}: dots and backticks are part of the name. */
  private static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }
}
