package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;
import java.util.ArrayList;
import java.util.List;

/**
 * Head-parallel (DeepSpeed-Ulysses) attention over p ranks: rank j is responsible for heads
 * {@code [j·H/p, (j+1)·H/p)}. One all-to-all turns the sequence shards {@code (seqLocal, H heads)}
 * into head shards {@code (n, H/p heads)}: every rank sends each peer the peer's heads of its own
 * q, k and v rows. The receiver puts the rows back at their global positions, whatever the layout
 * (uneven, zigzag), so the full sequence is in global order and the mask applies with offsets 0:
 * one kernel call per attend. A second all-to-all returns each rank's rows of the output.
 *
 * <p>The head count must be divisible by p ({@link #checkHeads}). Each rank holds q, k, v and o
 * for the whole sequence over H/p heads: {@code 16·b·n·(H/p)·d} bytes. Traffic: see
 * {@link #bytesSent}; with even shards {@code 16·b·n·H·d·(p−1)/p²} bytes per rank.
 */
public final class UlyssesStrategy implements Strategy {
  private final Communicator comm;
  private final ShardLayout layout;
  private final AttentionKernel kernel;

  public UlyssesStrategy(Communicator comm, ShardLayout layout, AttentionKernel kernel) {
    Blocks.checkLayout(layout, comm.size());
    this.comm = comm;
    this.layout = layout;
    this.kernel = kernel;
  }

  @Override
  public String name() {
    return "ulysses(p=" + comm.size() + ")";
  }

  /**
   * Fails unless {@code heads} splits evenly over {@code ranks}; the message lists the rank counts
   * that work. Call it before starting a job to fail fast.
   */
  public static void checkHeads(int heads, int ranks) {
    if (heads < 1 || ranks < 1) {
      throw new IllegalArgumentException("ulysses needs at least one head and one rank, got "
          + heads + " heads and " + ranks + " ranks");
    }
    if (heads % ranks != 0) {
      List<String> ok = new ArrayList<>();
      for (int p = 1; p <= heads; p++) {
        if (heads % p == 0) {
          ok.add(Integer.toString(p));
        }
      }
      String options = ok.size() == 1 ? ok.get(0) + " rank"
          : String.join(", ", ok.subList(0, ok.size() - 1)) + " or " + ok.get(ok.size() - 1)
              + " ranks";
      throw new IllegalArgumentException("ulysses needs the head count (" + heads + ") to be"
          + " divisible by the number of ranks (" + ranks + "); use " + options
          + ", or another backend");
    }
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attend}, exactly as {@link
   * Communicator#bytesSent()} counts them, with {@code n_x} the shard size of rank x and
   * {@code g = H/p} heads per rank:
   * <ul>
   *   <li>q, k, v: {@code 4·3·b·n_rank·g·d·(p−1)} — each peer gets its g heads of our rows;
   *   <li>o: {@code 4·b·g·d·(n − n_rank)} — every peer's rows of our g heads go back to it.
   * </ul>
   * With even shards: {@code 16·b·n·H·d·(p−1)/p²}.
   */
  public static long bytesSent(ShardLayout layout, int rank, int batch, int heads, int headDim) {
    int p = layout.parts();
    checkHeads(heads, p);
    long g = heads / p;
    long mine = layout.size(rank);
    long qkv = 3L * batch * mine * g * headDim * (p - 1);
    long o = (long) batch * g * headDim * (layout.total() - mine);
    return 4 * (qkv + o);
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    int p = comm.size();
    int rank = comm.rank();
    checkHeads(q.heads(), p); // before any communication, so every rank fails alike
    Blocks.checkShard(layout, rank, q, k, v, out);
    int batch = q.batch();
    int g = q.heads() / p;
    int d = q.headDim();
    int n = Math.toIntExact(layout.total());

    // Sequence shards → head shards: peer j gets heads [j·g, (j+1)·g) of our q, k, v rows.
    int mine = layout.size(rank);
    float[][] send = Blocks.splitHeads(q, k, v, p, g);
    float[][] got = comm.allToAll(send);
    send = null; // let the send buffers go before the full-sequence ones are allocated

    int full = Blocks.floats(batch, n, g, d);
    float[] qkv = new float[3 * full];
    for (int s = 0; s < p; s++) {
      int rows = layout.size(s);
      int part = Blocks.floats(batch, rows, g, d);
      for (int t = 0; t < 3; t++) {
        toGlobal(Blocks.view(got[s], t * part, batch, rows, g, d), layout.segments(s),
            Blocks.view(qkv, t * full, batch, n, g, d));
      }
      got[s] = null;
    }

    float[] o = new float[full];
    BlockView oFull = Blocks.view(o, 0, batch, n, g, d);
    kernel.forward(Blocks.view(qkv, 0, batch, n, g, d), Blocks.view(qkv, full, batch, n, g, d),
        Blocks.view(qkv, 2 * full, batch, n, g, d), scale, mask.at(0, 0), oFull,
        new float[batch * n * g]);
    qkv = null;

    // Head shards → sequence shards: rank s gets its rows of our heads back.
    float[][] back = new float[p][];
    for (int s = 0; s < p; s++) {
      back[s] = new float[Blocks.floats(batch, layout.size(s), g, d)];
      fromGlobal(oFull, layout.segments(s),
          Blocks.view(back[s], 0, batch, layout.size(s), g, d));
    }
    float[][] outs = comm.allToAll(back);
    for (int j = 0; j < p; j++) {
      Blocks.copy(Blocks.view(outs[j], 0, batch, mine, g, d), 0, out, j * g, g);
    }
  }

  /** Rows of a shard, in its local order, to their global positions. */
  private static void toGlobal(BlockView shard, List<ShardLayout.Segment> segs, BlockView full) {
    int local = 0;
    for (ShardLayout.Segment seg : segs) {
      Blocks.copy(shard.rows(local, seg.length()), 0,
          full.rows(Math.toIntExact(seg.start()), seg.length()), 0, shard.heads());
      local += seg.length();
    }
  }

  /** The shard's rows gathered from their global positions, in its local order. */
  private static void fromGlobal(BlockView full, List<ShardLayout.Segment> segs, BlockView shard) {
    int local = 0;
    for (ShardLayout.Segment seg : segs) {
      Blocks.copy(full.rows(Math.toIntExact(seg.start()), seg.length()), 0,
          shard.rows(local, seg.length()), 0, shard.heads());
      local += seg.length();
    }
  }
}
