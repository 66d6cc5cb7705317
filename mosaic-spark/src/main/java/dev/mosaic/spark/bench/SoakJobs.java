package dev.mosaic.spark.bench;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.DataFrameAttention;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.ShardedAttention;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.StrategySpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.apache.spark.SparkException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The soak's jobs: a fixed cycle of small attention jobs over every strategy, causal and not,
 * through {@link ShardedAttention} and {@link DataFrameAttention}, and two that fail on purpose (a
 * task that throws mid-ring, a DataFrame with a malformed row). Every successful job is checked
 * against the single-JVM layer (relative error below 1e-5, the bound of the ring tests); every
 * failing one must fail with its own error.
 */
final class SoakJobs {
  private static final int BATCH = 2;
  private static final int SEQ = 64;
  private static final int EMBED = 32;
  private static final int HEADS = 4;
  private static final double MAX_RELATIVE_ERROR = 1e-5;

  /** One kind of job in the cycle. */
  enum Kind {
    LOCAL("local (1 task)"),
    RING_CAUSAL("ring, causal"),
    ULYSSES("ulysses"),
    MESH2D_CAUSAL("mesh2d, causal"),
    COMPOSED("composed"),
    HIERARCHICAL_CAUSAL("hierarchical, causal"),
    DATAFRAME_RING("DataFrame ring"),
    TASK_FAILURE("task fails mid-ring (on purpose)"),
    RING("ring"),
    BAD_INPUT("malformed DataFrame row (on purpose)");

    final String label;

    Kind(String label) {
      this.label = label;
    }

    boolean failsOnPurpose() {
      return this == TASK_FAILURE || this == BAD_INPUT;
    }
  }

  /** What one job did: {@code problem} is null when it went as planned. */
  record Outcome(int index, Kind kind, String problem) {}

  private final SparkSession spark;
  private final int sp;
  private final long seed;

  SoakJobs(SparkSession spark, int sp, long seed) {
    if (sp < 2 || sp % 2 != 0) {
      throw new IllegalArgumentException("the soak needs an even task count of at least 2 (its"
          + " mesh, composed and hierarchical jobs split the tasks in two), got sp " + sp);
    }
    this.spark = spark;
    this.sp = sp;
    this.seed = seed;
  }

  static Kind kindOf(int index) {
    return Kind.values()[index % Kind.values().length];
  }

  Outcome run(int index) {
    Kind kind = kindOf(index);
    Random rnd = new Random(seed + index);
    String problem;
    try {
      problem = switch (kind) {
        case LOCAL -> sharded(rnd, 1, StrategySpec.of(Backends.LOCAL), false);
        case RING_CAUSAL -> sharded(rnd, sp, StrategySpec.of(Backends.RING), true);
        case ULYSSES -> sharded(rnd, sp, StrategySpec.of(Backends.ULYSSES), false);
        case MESH2D_CAUSAL -> sharded(rnd, sp, StrategySpec.of(Backends.MESH2D), true);
        case COMPOSED -> sharded(rnd, sp,
            StrategySpec.of(Backends.COMPOSED).withMesh(2, sp / 2), false);
        case HIERARCHICAL_CAUSAL -> sharded(rnd, sp, StrategySpec.of(Backends.HIERARCHICAL)
            .withNodes(2, Backends.RING, Backends.RING), true);
        case DATAFRAME_RING -> dataFrame(rnd, false);
        case RING -> sharded(rnd, sp, StrategySpec.of(Backends.RING), false);
        case TASK_FAILURE -> failingTask();
        case BAD_INPUT -> dataFrame(rnd, true);
      };
    } catch (IllegalArgumentException e) {
      problem = expected(kind, Kind.BAD_INPUT, "embedDim", e);
    } catch (Exception e) { // Scala throws SparkException without declaring it
      problem = e instanceof SparkException
          ? expected(kind, Kind.TASK_FAILURE, "injected soak failure", e)
          : "failed: " + firstLine(e);
    }
    return new Outcome(index, kind, problem);
  }

  /** Null if {@code e} is the planned failure of {@code planned}, else what went wrong. */
  private static String expected(Kind kind, Kind planned, String mark, Exception e) {
    String msg = String.valueOf(e.getMessage());
    return kind == planned && msg.contains(mark) ? null : "failed: " + firstLine(e);
  }

  private String sharded(Random rnd, int tasks, StrategySpec strategy, boolean causal) {
    Tensor x = Tensor.randn(rnd, 1f, BATCH, SEQ, EMBED);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(HEADS, 1, causal, Long.MAX_VALUE,
        weights(rnd), strategy);
    Tensor actual = ShardedAttention.run(MosaicContext.init(spark, tasks), x, spec);
    return compare(actual, local(x, spec));
  }

  private String dataFrame(Random rnd, boolean malformed) {
    List<Tensor> seqs = new ArrayList<>();
    List<Row> rows = new ArrayList<>();
    for (int key = 0; key < BATCH; key++) {
      Tensor s = Tensor.randn(rnd, 1f, SEQ, EMBED);
      seqs.add(s);
      for (int pos = 0; pos < SEQ; pos++) {
        int len = malformed && key == 1 && pos == 7 ? EMBED - 1 : EMBED;
        float[] v = new float[len];
        System.arraycopy(s.data(), pos * EMBED, v, 0, len);
        rows.add(RowFactory.create(key, pos, v));
      }
    }
    Dataset<Row> df = spark.createDataFrame(rows, new StructType()
        .add("key", DataTypes.IntegerType, false)
        .add("pos", DataTypes.IntegerType, false)
        .add("emb", DataTypes.createArrayType(DataTypes.FloatType, false), false));
    ShardedAttention.Spec spec = new ShardedAttention.Spec(HEADS, 0, false, Long.MAX_VALUE,
        weights(rnd), Backends.RING);
    // A task memory nothing fits: every sequence goes through the ring over sp barrier tasks.
    List<Row> out = DataFrameAttention.run(MosaicContext.init(spark, sp)
        .with(MosaicConfig.TASK_MEMORY, "1"), df, "key", "pos", "emb",
        spec, "y").collectAsList();
    if (malformed) {
      return "expected a failure, the job succeeded";
    }
    Tensor actual = Tensor.zeros(BATCH, SEQ, EMBED);
    for (Row r : out) {
      List<Float> y = r.getList(2);
      int off = (r.getInt(0) * SEQ + r.getInt(1)) * EMBED;
      for (int i = 0; i < EMBED; i++) {
        actual.data()[off + i] = y.get(i);
      }
    }
    Tensor expected = Tensor.zeros(BATCH, SEQ, EMBED);
    for (int key = 0; key < BATCH; key++) {
      float[] y = local(seqs.get(key), spec).data();
      System.arraycopy(y, 0, expected.data(), key * SEQ * EMBED, y.length);
    }
    return out.size() != BATCH * SEQ ? out.size() + " rows, expected " + BATCH * SEQ
        : compare(actual, expected);
  }

  private String failingTask() {
    MosaicContext ctx = MosaicContext.init(spark, sp);
    List<Integer> ranks = IntStream.range(0, sp).boxed().toList();
    BarrierRunner.run(ctx.jsc().parallelize(ranks, sp), ringFailingAtRank1(), ctx.config(),
        String.class).collect();
    return "expected a failure, the job succeeded";
  }

  /** A ring of sendRecv steps in which rank 1 throws at the second step. */
  static ShardFunction<Integer, String> ringFailingAtRank1() {
    return (env, records) -> {
      Communicator comm = env.comm();
      int r = env.rank();
      int p = env.size();
      float[] send = {r};
      for (int step = 1; step < p; step++) {
        if (r == 1 && step == Math.min(2, p - 1)) {
          throw new IllegalStateException("injected soak failure of rank 1 at step " + step);
        }
        float[] recv = new float[1];
        comm.sendRecv(send, 0, 1, (r + 1) % p, recv, 0, 1, (r - 1 + p) % p).await();
        send = recv;
      }
      return List.of(Integer.toString(r)).iterator();
    };
  }

  private static Tensor local(Tensor x, ShardedAttention.Spec spec) {
    try (MultiAxisAttention layer = MultiAxisAttention.builder(EMBED, HEADS, spec.axis())
        .weights(spec.weights()).causal(spec.causal()).threads(1).build()) {
      return layer.forward(x, spec.keyLimit());
    }
  }

  private static String compare(Tensor actual, Tensor expected) {
    double rel = RelativeError.of(actual, expected);
    return rel < MAX_RELATIVE_ERROR ? null : "relative error " + rel + " against the local layer";
  }

  private static AttentionWeights weights(Random rnd) {
    return new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * EMBED, EMBED),
        Tensor.randn(rnd, 0.1f, 3 * EMBED), Tensor.randn(rnd, 0.3f, EMBED, EMBED),
        Tensor.randn(rnd, 0.1f, EMBED));
  }

  static String firstLine(Throwable e) {
    String msg = e.getClass().getSimpleName() + ": " + e.getMessage();
    return msg.lines().findFirst().orElse(msg);
  }
}
