package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.layers.AttentionPartial;
import dev.mosaic.spark.layers.KeyValues;
import dev.mosaic.spark.layers.MultiAxisAttention;

/**
 * The row attention of test rows against train-row keys/values split in p shards that never
 * move: a query ring. Task r holds K/V shard r and chunk r of the test rows, a
 * {@code (rows, columns, E)} table attended along its rows. Each chunk travels r → r+1 with its
 * running output o and log-sum-exp ℓ: at step s task r holds chunk (r − s) mod p, attends its
 * queries to shard r ({@link MultiAxisAttention#partial}) and merges that partial (o_b, ℓ_b) in:
 *
 * <pre>  ℓ' = log(e^ℓ + e^ℓ_b),   o' = o − σ(ℓ_b − ℓ)·(o − o_b)          (LseMerge)</pre>
 *
 * which is the softmax over the union of the disjoint key sets, exactly (up to fp32 rounding).
 * After p steps every chunk has seen every shard; one more hop brings it home, where
 * {@link MultiAxisAttention#finish} projects it. Chunks may be uneven or empty: a payload starts
 * with its chunk number, so it is never empty and a mix-up is caught.
 */
public final class QueryRing {
  private final Communicator comm;
  private final int[] chunkRows;

  /** Collective: every task tells the others how many test rows it holds. */
  public QueryRing(Communicator comm, int localRows) {
    this.comm = comm;
    float[][] all = comm.allGather(new float[] {localRows});
    chunkRows = new int[all.length];
    for (int r = 0; r < all.length; r++) {
      chunkRows[r] = (int) all[r][0];
    }
  }

  /** Test rows per task, indexed by rank. */
  public int[] chunkRows() {
    return chunkRows.clone();
  }

  /**
   * Collective: {@code layer}'s output for this task's chunk {@code x} {@code (rows, columns, E)},
   * its queries attending to every task's shard; {@code shard} is this task's keys/values.
   */
  public Tensor attend(MultiAxisAttention layer, Tensor x, KeyValues shard) {
    int p = comm.size();
    int rank = comm.rank();
    if (x.rank() != 3 || x.dim(0) != chunkRows[rank]) {
      throw new IllegalArgumentException("x must be [" + chunkRows[rank] + ", columns, E] (this"
          + " task's test rows), got " + x);
    }
    Chunk held = new Chunk(layer, rank, x.dim(1), x.dim(2), chunkRows[rank], x, null);
    held.attend(shard);
    int succ = (rank + 1) % p;
    int pred = (rank + p - 1) % p;
    for (int step = 1; step <= p; step++) {
      int next = Math.floorMod(rank - step, p); // the chunk the predecessor passes on
      float[] out = held.pack();
      Chunk empty = new Chunk(layer, next, x.dim(1), x.dim(2), chunkRows[next], null, null);
      float[] in = new float[empty.packedLength()];
      comm.sendRecv(out, 0, out.length, succ, in, 0, in.length, pred).await();
      held = empty.unpack(in);
      if (step < p) {
        held.attend(shard);
      }
    }
    return held.finish();
  }

  /** One chunk of test rows in flight: its table x and its running partial (null before any). */
  private static final class Chunk {
    private final MultiAxisAttention layer;
    private final int id;
    private final int cols;
    private final int embed;
    private final int rows;
    private final Tensor x;
    private AttentionPartial acc;

    Chunk(MultiAxisAttention layer, int id, int cols, int embed, int rows, Tensor x,
        AttentionPartial acc) {
      this.layer = layer;
      this.id = id;
      this.cols = cols;
      this.embed = embed;
      this.rows = rows;
      this.x = x;
      this.acc = acc;
    }

    void attend(KeyValues shard) {
      if (rows == 0) {
        return;
      }
      AttentionPartial part = layer.partial(x, shard);
      acc = acc == null ? part : acc.merge(part);
    }

    private int cells() {
      return rows * cols * embed;
    }

    private int lseLength() {
      return rows * cols * layer.numHeads();
    }

    /** [id | x | o | ℓ]. */
    int packedLength() {
      return 1 + 2 * cells() + lseLength();
    }

    float[] pack() {
      float[] p = new float[packedLength()];
      p[0] = id;
      if (rows > 0) {
        System.arraycopy(x.data(), 0, p, 1, cells());
        System.arraycopy(acc.output().data(), 0, p, 1 + cells(), cells());
        System.arraycopy(acc.lse(), 0, p, 1 + 2 * cells(), lseLength());
      }
      return p;
    }

    Chunk unpack(float[] p) {
      if ((int) p[0] != id) { // both sides derive the schedule: a mismatch is a bug
        throw new CommException("query ring: expected chunk " + id + ", received chunk "
            + (int) p[0]);
      }
      if (rows == 0) {
        return this;
      }
      float[] xs = new float[cells()];
      float[] o = new float[cells()];
      float[] lse = new float[lseLength()];
      System.arraycopy(p, 1, xs, 0, xs.length);
      System.arraycopy(p, 1 + cells(), o, 0, o.length);
      System.arraycopy(p, 1 + 2 * cells(), lse, 0, lse.length);
      int heads = layer.numHeads();
      // the partial's layout: (batch = columns, seq = rows, heads, headDim), lse [cols][rows][h]
      Tensor out = Tensor.of(o, cols, rows, heads, embed / heads);
      return new Chunk(layer, id, cols, embed, rows, Tensor.of(xs, rows, cols, embed),
          new AttentionPartial(out, lse, new int[] {rows, cols, embed}));
    }

    Tensor finish() {
      return rows == 0 ? Tensor.zeros(0, cols, embed) : layer.finish(acc);
    }
  }
}
