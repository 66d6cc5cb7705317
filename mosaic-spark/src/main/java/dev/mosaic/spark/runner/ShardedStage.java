package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.plan.RaggedPlan;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.Strategy;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.spark.strategy.UlyssesStrategy;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.catalyst.InternalRow;
import scala.Tuple2;

/**
 * Sequences too long for one task, in one barrier stage of {@code p} tasks: each sequence's
 * positions are cut into {@code p} shards with {@link ShardLayout} (contiguous, or zigzag when
 * causal so every task does the same work), rows reach their shard's task through Spark's shuffle
 * ({@link IndexPartitioner}), and the tasks run the sequences one after another, each with the
 * stage's strategy over the task's communicator.
 */
final class ShardedStage {
  private ShardedStage() {}

  /** What the tasks of one stage need; shipped in the closure. */
  private record Stage(int[] sequences, Router[] routers, ShardLayout[] layouts,
      StrategySpec strategy, SequenceRows rows, ShardedAttention.Spec spec)
      implements Serializable {
    /** Index of sequence {@code seq} in this stage, or -1. */
    int slot(int seq) {
      int i = Arrays.binarySearch(sequences, seq);
      return i >= 0 ? i : -1;
    }
  }

  static ShardLayout layoutFor(long n, int p, boolean causal) {
    return causal && p > 1 ? ShardLayout.zigzag(n, p) : ShardLayout.contiguous(n, p);
  }

  static JavaRDD<InternalRow> run(JavaRDD<SequenceRows.Cell> cells, RaggedPlan.Stage planned,
      SequenceRows rows, ShardedAttention.Spec spec, MosaicConfig config) {
    int p = planned.tasks();
    planned.strategy().validate(p, spec.numHeads());
    if (Backends.ULYSSES.equals(planned.strategy().backend())) {
      UlyssesStrategy.checkKvHeads(spec.numHeads(), spec.numKvHeads(), p);
    }
    int[] seqs = planned.sequences().clone();
    Arrays.sort(seqs);
    Router[] routers = new Router[seqs.length];
    ShardLayout[] layouts = new ShardLayout[seqs.length];
    for (int i = 0; i < seqs.length; i++) {
      layouts[i] = layoutFor(rows.lengths()[seqs[i]], p, spec.causal());
      routers[i] = Router.of(layouts[i]);
    }
    Stage stage = new Stage(seqs, routers, layouts, planned.strategy(), rows, spec);
    JavaRDD<SequenceRows.Cell> sharded = cells
        .filter(c -> stage.slot(c.seq()) >= 0)
        .mapToPair(c -> new Tuple2<>(stage.routers()[stage.slot(c.seq())].shard(c.pos()), c))
        .partitionBy(new IndexPartitioner(p))
        .values();
    ShardFunction<SequenceRows.Cell, InternalRow> fn = (env, it) -> runTask(env, it, stage);
    return BarrierRunner.run(sharded, fn, config, spec.device(), InternalRow.class);
  }

  private static Iterator<InternalRow> runTask(TaskEnv env, Iterator<SequenceRows.Cell> cells,
      Stage stage) {
    int rank = env.rank();
    SequenceRows rows = stage.rows();
    int count = stage.sequences().length;
    int rowFloats = rows.rowFloats();
    float[][] data = new float[count][];
    BitSet[] filled = new BitSet[count];
    for (int i = 0; i < count; i++) {
      int local = stage.layouts()[i].size(rank);
      data[i] = new float[Math.multiplyExact(local, rowFloats)];
      filled[i] = new BitSet(local);
    }
    while (cells.hasNext()) {
      SequenceRows.Cell c = cells.next();
      int i = stage.slot(c.seq());
      Router router = stage.routers()[i];
      if (router.shard(c.pos()) != rank) {
        throw new IllegalStateException("shard " + rank + " received "
            + rows.where(c.seq(), c.pos()) + ", which belongs to shard " + router.shard(c.pos()));
      }
      int row = router.localRow(c.pos());
      if (filled[i].get(row)) {
        throw new IllegalStateException("shard " + rank + " received "
            + rows.where(c.seq(), c.pos()) + " twice" + SequenceRows.CHANGED);
      }
      filled[i].set(row);
      System.arraycopy(c.values(), 0, data[i], row * rowFloats, rowFloats);
    }
    for (int i = 0; i < count; i++) {
      int local = stage.layouts()[i].size(rank);
      int missing = filled[i].nextClearBit(0);
      if (missing < local) {
        throw new IllegalStateException("shard " + rank + " did not receive "
            + rows.where(stage.sequences()[i], globalPos(stage.layouts()[i].segments(rank),
                missing)) + SequenceRows.CHANGED);
      }
    }
    ShardedAttention.Spec spec = stage.spec();
    int threads = env.config().taskThreads();
    List<InternalRow> out = new ArrayList<>();
    try (AttentionKernel kernel = env.kernel(threads)) {
      for (int i = 0; i < count; i++) {
        ShardLayout layout = stage.layouts()[i];
        int local = layout.size(rank);
        Tensor y;
        try (Strategy strategy = Backends.distributed(stage.strategy(), env.comm(), layout,
                kernel, 0);
            MultiAxisAttention layer = MultiAxisAttention.builder(rows.embed(), spec.numHeads(),
                0).weights(spec.weights()).causal(spec.causal()).threads(threads)
                .strategy(strategy).build()) {
          y = layer.forward(Tensor.of(data[i], rows.shape(local)), spec.keyLimit());
        }
        data[i] = null; // the input of a finished sequence is garbage now
        int lr = 0;
        for (ShardLayout.Segment s : layout.segments(rank)) {
          for (int k = 0; k < s.length(); k++, lr++) {
            out.add(rows.outRow(stage.sequences()[i], s.start() + k, y.data(), lr * rowFloats));
          }
        }
      }
    }
    return out.iterator();
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

  /** Global position → (rank, local row), from the layout's segments. */
  record Router(long[] starts, int[] ranks, int[] locals) implements Serializable {
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
}
