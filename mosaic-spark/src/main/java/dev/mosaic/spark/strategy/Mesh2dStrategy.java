package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;
import java.util.ArrayList;
import java.util.List;

/**
 * 2-D tiled attention over an R×C grid of p = R·C ranks; rank {@code r·C + c} sits at row r,
 * column c. Each rank still owns its sequence shard (the {@link ShardLayout} says which
 * positions). Row r's <em>query block</em> is the union of the shards of the ranks in grid row r;
 * column c's <em>key block</em> is the union of the shards of the ranks in grid column c. Every
 * position is in exactly one query block and one key block, so every (query, key) pair is computed
 * exactly once, by the rank at (its query's row, its key's column).
 *
 * <p>One {@link #attend} call, on rank (r, c):
 * <ol>
 *   <li>all-gather Q inside row r (C ranks) → the query block of row r;
 *   <li>all-gather [K | V] inside column c (R ranks) → the key block of column c;
 *   <li>compute the tile with the kernel, one call per (query segment, key segment) pair at its
 *       global offsets, skipping pairs the mask hides entirely; the result is one partial
 *       (o, lse) for each rank of row r, covering that rank's queries against column c's keys;
 *   <li>reduce-scatter inside row r (an all-to-all): each rank receives the C partials for its own
 *       queries and LSE-merges them. A partial that saw no key at all (causal, key bound) travels
 *       as an empty message.
 * </ol>
 *
 * <p>Traffic: see {@link #bytesSent}. With even shards and no mask each rank sends
 * {@code 4·b·h·(n/p)·[(C−1)·d + 2·(R−1)·d + (C−1)·(d+1)]} bytes — q to its row, k and v to its
 * column, o and lse back to its row — about {@code 4·b·h·n·(4d+1)/√p} on a square grid, against
 * {@code 8·b·h·n·d·(p−1)/p} for the ring. On a 1×p grid (p prime) it sends slightly more than
 * the ring. Memory per rank (even shards): the row's Q block, the column's K and V blocks and
 * one partial per rank of the row, {@code 4·b·h·[(n/R)·(2d+1) + 2d·n/C]} bytes, plus the
 * kernel's tiles.
 *
 * <p>The constructor is collective: it splits the communicator into the row and column groups,
 * so every rank of {@code comm} must build its Mesh2dStrategy at the same point of its sequence of
 * collectives.
 */
public final class Mesh2dStrategy implements Strategy {
  private final Communicator comm;
  private final ShardLayout layout;
  private final int rows;
  private final int cols;
  private final AttentionKernel kernel;
  private final Communicator rowComm; // ranks (r, 0..C-1); group rank = c
  private final Communicator colComm; // ranks (0..R-1, c); group rank = r

  /**
   * @param rows R, the number of query blocks
   * @param cols C, the number of key blocks; {@code rows·cols} must equal {@code comm.size()}
   */
  public Mesh2dStrategy(Communicator comm, ShardLayout layout, int rows, int cols,
      AttentionKernel kernel) {
    checkGrid(comm.size(), rows, cols);
    Blocks.checkLayout(layout, comm.size());
    this.comm = comm;
    this.layout = layout;
    this.rows = rows;
    this.cols = cols;
    this.kernel = kernel;
    int r = comm.rank() / cols;
    int c = comm.rank() % cols;
    this.rowComm = comm.split(r, c);
    this.colComm = comm.split(c, r);
  }

  /** The most square grid for p ranks: R the largest divisor of p with R ≤ √p, C = p / R. */
  public static int[] squarestGrid(int p) {
    if (p < 1) {
      throw new IllegalArgumentException("need at least one rank, got " + p);
    }
    int r = (int) Math.sqrt(p);
    while (p % r != 0) {
      r--;
    }
    return new int[] {r, p / r};
  }

  private static void checkGrid(int p, int rows, int cols) {
    if (rows < 1 || cols < 1 || (long) rows * cols != p) {
      int[] g = squarestGrid(Math.max(p, 1));
      throw new IllegalArgumentException("mesh2d grid " + rows + "x" + cols + " does not cover "
          + p + " ranks: rows·cols must equal the number of ranks (e.g. " + g[0] + "x" + g[1]
          + ")");
    }
  }

  @Override
  public String name() {
    return "mesh2d(" + rows + "x" + cols + ")";
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attend} (the communicator split in
   * the constructor not included), exactly as {@link Communicator#bytesSent()} counts them, with
   * {@code n_x} the shard size of rank x and rank (r, c) = {@code rank}:
   * <ul>
   *   <li>q: {@code 4·b·n_rank·h·d·(C−1)} — its shard to the other ranks of its row;
   *   <li>k, v: {@code 4·b·n_rank·h·2d·(R−1)} — its shards to the other ranks of its column;
   *   <li>o, lse: {@code 4·b·n_(r,c')·h·(d+1)} for every other rank (r, c') of its row, except
   *       when the mask hides all of column c's keys from all of that rank's queries.
   * </ul>
   * Without a mask and with even shards (n_x = n/p) the sum is
   * {@code 4·b·h·(n/p)·[(C−1)·d + 2·(R−1)·d + (C−1)·(d+1)]}.
   */
  public static long bytesSent(ShardLayout layout, int rows, int cols, int rank, int batch,
      int heads, int headDim, AttentionMask mask) {
    checkGrid(layout.parts(), rows, cols);
    int r = rank / cols;
    int c = rank % cols;
    long shard = (long) batch * layout.size(rank) * heads * headDim;
    long floats = shard * (cols - 1) + 2 * shard * (rows - 1);
    List<ShardLayout.Segment> keys = keyBlock(layout, rows, cols, c);
    for (int c2 = 0; c2 < cols; c2++) {
      int owner = r * cols + c2;
      if (c2 != c && anyVisible(layout.segments(owner), keys, mask)) {
        floats += PartialOutput.floats(batch, layout.size(owner), heads, headDim);
      }
    }
    return 4 * floats;
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    int rank = comm.rank();
    Blocks.checkShard(layout, rank, q, k, v, out);
    int r = rank / cols;
    int c = rank % cols;
    int batch = q.batch();
    int heads = q.heads();
    int d = q.headDim();

    float[][] rowQ = rowComm.allGather(Blocks.pack(q)); // indexed by column c'
    float[][] colKv = colComm.allGather(Blocks.pack(k, v)); // indexed by row r'

    // The tile: one partial per rank of our row, for its queries against our column's keys.
    Tile tile = new Tile(batch, heads, d, scale, mask, colKv, c);
    PartialOutput[] partials = new PartialOutput[cols];
    for (int c2 = 0; c2 < cols; c2++) {
      int owner = r * cols + c2;
      partials[c2] = tile.attend(rowQ[c2], layout.segments(owner), layout.size(owner));
    }

    // Reduce-scatter: partial c' goes to rank (r, c'); our own stays here.
    float[][] send = new float[cols][];
    for (int c2 = 0; c2 < cols; c2++) {
      send[c2] = c2 == c || partials[c2] == null ? Blocks.EMPTY : partials[c2].data();
    }
    float[][] received = rowComm.allToAll(send);
    PartialOutput mine = new PartialOutput(batch, layout.size(rank), heads, d);
    for (int c2 = 0; c2 < cols; c2++) { // fixed order: the same rounding on every run
      if (c2 == c) {
        if (partials[c] != null) {
          mine.mergeAll(partials[c].data());
        }
      } else if (received[c2].length > 0) {
        mine.mergeAll(received[c2]);
      }
    }
    Blocks.copy(mine.output(), 0, out, 0, heads);
  }

  /** Column c's key block: the segments of ranks (0..R-1, c), in that order. */
  private static List<ShardLayout.Segment> keyBlock(ShardLayout layout, int rows, int cols,
      int c) {
    List<ShardLayout.Segment> segs = new ArrayList<>();
    for (int r = 0; r < rows; r++) {
      segs.addAll(layout.segments(r * cols + c));
    }
    return segs;
  }

  /** Whether the mask lets some query of {@code qSegs} see some key of {@code kSegs}. */
  static boolean anyVisible(List<ShardLayout.Segment> qSegs, List<ShardLayout.Segment> kSegs,
      AttentionMask mask) {
    for (ShardLayout.Segment qs : qSegs) {
      for (ShardLayout.Segment ks : kSegs) {
        if (visible(qs, ks, mask)) {
          return true;
        }
      }
    }
    return false;
  }

  private static boolean visible(ShardLayout.Segment qs, ShardLayout.Segment ks,
      AttentionMask mask) {
    return qs.length() > 0 && ks.length() > 0
        && mask.at(qs.start(), ks.start()).visibleKeyEnd(0, qs.length(), ks.length()) > 0;
  }

  /** This rank's tile: any row member's queries against the gathered key block of column c. */
  private final class Tile {
    private final int batch;
    private final int heads;
    private final int d;
    private final float scale;
    private final AttentionMask mask;
    private final BlockView[] keys; // per row r' of the grid
    private final BlockView[] values;
    private final List<List<ShardLayout.Segment>> keySegs;
    private float[] scratch = Blocks.EMPTY;
    private float[] scratchLse = Blocks.EMPTY;

    Tile(int batch, int heads, int d, float scale, AttentionMask mask, float[][] colKv, int c) {
      this.batch = batch;
      this.heads = heads;
      this.d = d;
      this.scale = scale;
      this.mask = mask;
      this.keys = new BlockView[rows];
      this.values = new BlockView[rows];
      this.keySegs = new ArrayList<>();
      for (int r2 = 0; r2 < rows; r2++) {
        int src = r2 * cols + c;
        int n = layout.size(src);
        keys[r2] = Blocks.view(colKv[r2], 0, batch, n, heads, d);
        values[r2] = Blocks.view(colKv[r2], Blocks.floats(batch, n, heads, d), batch, n, heads, d);
        keySegs.add(layout.segments(src));
      }
    }

    /**
     * The partial for a rank whose packed queries are {@code qData} at {@code qSegs}, or null
     * when the mask hides every key of this column from every one of those queries.
     */
    PartialOutput attend(float[] qData, List<ShardLayout.Segment> qSegs, int qRows) {
      BlockView qAll = Blocks.view(qData, 0, batch, qRows, heads, d);
      PartialOutput acc = null;
      int qLocal = 0;
      for (ShardLayout.Segment qs : qSegs) {
        for (int r2 = 0; r2 < rows; r2++) {
          int kLocal = 0;
          for (ShardLayout.Segment ks : keySegs.get(r2)) {
            if (visible(qs, ks, mask)) {
              if (acc == null) {
                acc = new PartialOutput(batch, qRows, heads, d);
              }
              BlockView part = scratch(qs.length());
              kernel.forward(qAll.rows(qLocal, qs.length()), keys[r2].rows(kLocal, ks.length()),
                  values[r2].rows(kLocal, ks.length()), scale, mask.at(qs.start(), ks.start()),
                  part, scratchLse);
              acc.merge(qLocal, part, scratchLse);
            }
            kLocal += ks.length();
          }
        }
        qLocal += qs.length();
      }
      return acc;
    }

    /** A contiguous output block for {@code n} query rows, reusing one buffer. */
    private BlockView scratch(int n) {
      int need = Blocks.floats(batch, n, heads, d);
      if (scratch.length < need) {
        scratch = new float[need];
        scratchLse = new float[batch * n * heads];
      }
      return Blocks.view(scratch, 0, batch, n, heads, d);
    }
  }

  /** Closes the row and column groups (the parent communicator stays open). */
  @Override
  public void close() {
    rowComm.close();
    colComm.close();
  }
}
