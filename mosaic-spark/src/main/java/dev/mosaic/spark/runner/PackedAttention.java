package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.LocalStrategy;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.Partitioner;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Row;
import scala.Tuple2;

/**
 * The sequences that one task can hold, in ordinary (non-barrier) tasks: Spark's shuffle brings
 * each sequence's rows to the task the plan packed it into, sorted by (sequence, position), so a
 * task reads one sequence at a time, runs the local layer on exactly its rows (no padding), and
 * writes its rows out before reading the next: a task holds one sequence, not all of its own.
 */
final class PackedAttention {
  private PackedAttention() {}

  /**
   * @param packedTask the ordinary task of sequence {@code i}, -1 for one that runs elsewhere
   * @param tasks number of ordinary tasks (at least 1)
   */
  static JavaRDD<Row> run(JavaRDD<SequenceRows.Cell> cells, int[] packedTask, int tasks,
      SequenceRows rows, ShardedAttention.Spec spec, MosaicConfig config) {
    return cells.filter(c -> packedTask[c.seq()] >= 0)
        .mapToPair(c -> new Tuple2<>(((long) c.seq() << 32) | c.pos(), c))
        .repartitionAndSortWithinPartitions(new ByTask(packedTask, tasks))
        .values()
        .mapPartitions(it -> new Outputs(it, packedTask, rows, spec, config));
  }

  /** Key {@code sequence << 32 | position} → the sequence's task. */
  private static final class ByTask extends Partitioner {
    private static final long serialVersionUID = 1L;
    private final int[] packedTask;
    private final int tasks;

    ByTask(int[] packedTask, int tasks) {
      this.packedTask = packedTask;
      this.tasks = tasks;
    }

    @Override
    public int numPartitions() {
      return tasks;
    }

    @Override
    public int getPartition(Object key) {
      return packedTask[(int) ((Long) key >>> 32)];
    }
  }

  /** A task's output rows, computed one sequence at a time as they are read. */
  private static final class Outputs implements Iterator<Row> {
    private final Iterator<SequenceRows.Cell> cells;
    private final int[] packedTask;
    private final SequenceRows rows;
    private final ShardedAttention.Spec spec;
    private final MosaicConfig config;
    private final int task = TaskContext.getPartitionId();
    private SequenceRows.Cell pending;
    private MultiAxisAttention layer;
    private List<Row> current = List.of();
    private int next;
    private int lastSeq = -1;
    private final java.util.BitSet seen = new java.util.BitSet();

    Outputs(Iterator<SequenceRows.Cell> cells, int[] packedTask, SequenceRows rows,
        ShardedAttention.Spec spec, MosaicConfig config) {
      this.cells = cells;
      this.packedTask = packedTask;
      this.rows = rows;
      this.spec = spec;
      this.config = config;
    }

    @Override
    public boolean hasNext() {
      while (next == current.size()) {
        if (pending == null && !cells.hasNext()) {
          checkAllArrived();
          return false;
        }
        current = nextSequence();
        next = 0;
      }
      return true;
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return current.get(next++);
    }

    /** Reads the rows of the next sequence (positions 0..n-1 in order) and attends over them. */
    private List<Row> nextSequence() {
      SequenceRows.Cell first = pending != null ? pending : cells.next();
      pending = null;
      int seq = first.seq();
      if (seq <= lastSeq) {
        throw new IllegalStateException("task " + task + " received sequence " + seq
            + " after " + lastSeq + ": the shuffle did not sort by sequence");
      }
      lastSeq = seq;
      seen.set(seq);
      int n = Math.toIntExact(rows.lengths()[seq]);
      int rowFloats = rows.rowFloats();
      float[] data = new float[Math.multiplyExact(n, rowFloats)];
      long expected = 0;
      for (SequenceRows.Cell c = first; c != null; c = nextOf(seq)) {
        if (c.pos() != expected) {
          throw new IllegalStateException("task " + task + (c.pos() < expected
              ? " received " + rows.where(seq, c.pos()) + " twice"
              : " did not receive " + rows.where(seq, expected)) + SequenceRows.CHANGED);
        }
        System.arraycopy(c.values(), 0, data, (int) expected * rowFloats, rowFloats);
        expected++;
      }
      if (expected != n) {
        throw new IllegalStateException("task " + task + " did not receive "
            + rows.where(seq, expected) + SequenceRows.CHANGED);
      }
      float[] y = layer().forward(Tensor.of(data, rows.shape(n)), spec.keyLimit()).data();
      List<Row> out = new ArrayList<>(n);
      for (int p = 0; p < n; p++) {
        out.add(rows.outRow(seq, p, y, p * rowFloats));
      }
      return out;
    }

    /** The next cell of {@code seq}, or null (keeping a cell of the next sequence pending). */
    private SequenceRows.Cell nextOf(int seq) {
      if (!cells.hasNext()) {
        return null;
      }
      SequenceRows.Cell c = cells.next();
      if (c.seq() != seq) {
        pending = c;
        return null;
      }
      return c;
    }

    private void checkAllArrived() {
      for (int i = 0; i < packedTask.length; i++) {
        if (packedTask[i] == task && !seen.get(i)) {
          throw new IllegalStateException("task " + task + " received no row of key "
              + SequenceChecks.show(rows.keys()[i]) + SequenceRows.CHANGED);
        }
      }
    }

    /** Built on first use, closed when the task ends (also when it ends early or fails). */
    private MultiAxisAttention layer() {
      if (layer == null) {
        int threads = config.taskThreads();
        AttentionKernel kernel = Devices.taskKernel(spec.device(), threads,
            Devices.taskGpuAddresses(), 0, config.gpuDtype());
        MultiAxisAttention built = MultiAxisAttention.builder(rows.embed(), spec.numHeads(), 0)
            .weights(spec.weights()).causal(spec.causal()).threads(threads)
            .strategy(new LocalStrategy(kernel, false)).build();
        TaskContext ctx = TaskContext.get();
        if (ctx != null) {
          ctx.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) c -> {
            built.close();
            kernel.close();
          });
        }
        layer = built;
      }
      return layer;
    }
  }
}
