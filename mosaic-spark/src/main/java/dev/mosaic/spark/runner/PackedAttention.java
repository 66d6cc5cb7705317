package dev.mosaic.spark.runner;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.spark.gpu.Devices;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.Partitioner;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.catalyst.InternalRow;
import scala.Tuple2;

/**
 * The sequences that one task can hold, in ordinary (non-barrier) tasks: Spark's shuffle brings
 * each sequence's rows to the task the plan packed it into, sorted by (sequence, position). A
 * task reads whole sequences until they hold {@link #BATCH_FLOATS} floats, runs the layer on them
 * in one packed (varlen) kernel call on exactly their rows (no padding, {@link PackedLayer}), and
 * writes their rows out before reading more: a task holds a bounded batch, not all of its own.
 */
final class PackedAttention {
  /** Input floats per packed kernel call (16 MiB; the call holds about 6× that): a task of
   * short sequences makes one call, a task of long ones a few. */
  static final int BATCH_FLOATS = 1 << 22;

  private PackedAttention() {}

  /**
   * @param packedTask the ordinary task of sequence {@code i}, -1 for one that runs elsewhere
   * @param tasks number of ordinary tasks (at least 1)
   */
  static JavaRDD<InternalRow> run(JavaRDD<SequenceRows.Cell> cells, int[] packedTask, int tasks,
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
  private static final class Outputs implements Iterator<InternalRow> {
    private final Iterator<SequenceRows.Cell> cells;
    private final int[] packedTask;
    private final SequenceRows rows;
    private final ShardedAttention.Spec spec;
    private final MosaicConfig config;
    private final int task = TaskContext.getPartitionId();
    private SequenceRows.Cell pending;
    private PackedLayer layer;
    private List<InternalRow> current = List.of();
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
        current = nextBatch();
        next = 0;
      }
      return true;
    }

    @Override
    public InternalRow next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return current.get(next++);
    }

    /**
     * Reads whole sequences (each position 0..n-1 in order) until they hold
     * {@value #BATCH_FLOATS} floats or the task's input ends, and attends over all of them in one
     * packed call: no padding, no score across sequences.
     */
    private List<InternalRow> nextBatch() {
      List<Integer> seqs = new ArrayList<>();
      List<float[]> inputs = new ArrayList<>();
      long floats = 0;
      do {
        float[] data = readSequence();
        seqs.add(lastSeq);
        inputs.add(data);
        floats += data.length;
      } while (floats < BATCH_FLOATS && (pending != null || cells.hasNext()));
      int rowFloats = rows.rowFloats();
      int[] lengths = new int[seqs.size()];
      for (int i = 0; i < lengths.length; i++) {
        lengths[i] = inputs.get(i).length / rowFloats;
      }
      int[] cu = VarlenSequences.offsets(lengths);
      float[] x = new float[Math.toIntExact(floats)];
      for (int i = 0; i < lengths.length; i++) {
        System.arraycopy(inputs.get(i), 0, x, cu[i] * rowFloats, inputs.get(i).length);
      }
      inputs.clear();
      float[] y = layer().forward(x, cu, rows.nested() ? rows.features() : 1);
      List<InternalRow> out = new ArrayList<>(cu[lengths.length]);
      for (int i = 0; i < lengths.length; i++) {
        for (int p = 0; p < lengths[i]; p++) {
          out.add(rows.outRow(seqs.get(i), p, y, (cu[i] + p) * rowFloats));
        }
      }
      return out;
    }

    /** The rows of the next sequence (positions 0..n-1 in order), checked, back to back. */
    private float[] readSequence() {
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
      return data;
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
    private PackedLayer layer() {
      if (layer == null) {
        int threads = config.taskThreads();
        AttentionKernel kernel = Devices.taskKernel(spec.device(), threads,
            Devices.taskGpuAddresses(), 0, config.gpuDtype());
        PackedLayer built = new PackedLayer(spec.weights(), rows.embed(), spec.numHeads(),
            spec.numKvHeads(), spec.causal(), spec.keyLimit(), kernel, threads);
        TaskContext ctx = TaskContext.get();
        if (ctx != null) {
          ctx.addTaskCompletionListener(
              (org.apache.spark.util.TaskCompletionListener) c -> built.close());
        }
        layer = built;
      }
      return layer;
    }
  }
}
