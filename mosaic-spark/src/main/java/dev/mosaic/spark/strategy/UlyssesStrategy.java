package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.CpuFlashAttentionBackward;
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
 *
 * <p>Grouped-query attention (G K/V heads, fewer than H): rank j needs the K/V heads its query
 * heads read ({@link dev.mosaic.kernels.AttentionKernel#kvHead}). When p divides G each rank gets
 * its G/p K/V heads; when G divides p (fewer K/V heads than ranks) each rank's query heads all
 * read K/V head ⌊j·G/p⌋, which is sent to the p/G ranks needing it (replicated), and in the
 * backward their dK/dV shares are summed on the way back. Other G are refused
 * ({@link #checkKvHeads}).
 *
 * <p>{@link #attendBackward} transposes the two all-to-alls around the local backward. Closing
 * releases the backward kernel's threads (the forward kernel belongs to the caller).
 */
public final class UlyssesStrategy implements Strategy {
  private final Communicator comm;
  private final ShardLayout layout;
  private final AttentionKernel kernel;
  private CpuFlashAttentionBackward backward;

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
   * Fails unless {@code kvHeads} K/V heads can serve {@code heads} query heads over {@code ranks}:
   * G divides H, and G divides p (each K/V head replicated on p/G ranks) or p divides G (each rank
   * gets G/p of them). Checks {@link #checkHeads} first.
   */
  public static void checkKvHeads(int heads, int kvHeads, int ranks) {
    checkHeads(heads, ranks);
    if (kvHeads < 1 || heads % kvHeads != 0) {
      throw new IllegalArgumentException("the K/V head count (" + kvHeads + ") must divide the"
          + " query head count (" + heads + ")");
    }
    if (kvHeads % ranks != 0 && ranks % kvHeads != 0) {
      throw new IllegalArgumentException("ulysses over " + ranks + " ranks needs the K/V head"
          + " count (" + kvHeads + ") to divide " + ranks + " or be divisible by it; use another"
          + " number of ranks or another backend");
    }
  }

  /** K/V heads each rank holds: G/p, or 1 when there are fewer K/V heads than ranks. */
  static int kvHeadsPerRank(int kvHeads, int ranks) {
    return Math.max(1, kvHeads / ranks);
  }

  /** The first K/V head rank {@code j} holds: ⌊j·G/p⌋ (the one its query heads read). */
  static int firstKvHead(int j, int kvHeads, int ranks) {
    return j * kvHeads / ranks;
  }

  /**
   * As {@link #bytesSent(ShardLayout, int, int, int, int)} under grouped-query attention: each
   * peer gets its {@code H/p} query heads and its {@link #kvHeadsPerRank} K/V heads of k and v
   * (replicated K/V heads go to each rank that needs them), so q costs
   * {@code 4·b·n_rank·(H/p)·d·(p−1)}, k and v {@code 4·2·b·n_rank·g_kv·d·(p−1)}, o as for MHA.
   */
  public static long bytesSent(ShardLayout layout, int rank, int batch, int heads, int kvHeads,
      int headDim) {
    int p = layout.parts();
    checkKvHeads(heads, kvHeads, p);
    long g = heads / p;
    long gkv = kvHeadsPerRank(kvHeads, p);
    long mine = layout.size(rank);
    long qkv = (long) batch * mine * (g + 2 * gkv) * headDim * (p - 1);
    long o = (long) batch * g * headDim * (layout.total() - mine);
    return 4 * (qkv + o);
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
    attend(q, k, v, scale, mask, out, null);
  }

  /** The forward; also writes our queries' log-sum-exp unless {@code lse} is null. */
  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    int p = comm.size();
    checkKvHeads(q.heads(), k.heads(), p); // before any communication, so every rank fails alike
    Blocks.checkGroupedShard(layout, comm.rank(), q, k, v, out);
    int batch = q.batch();
    int g = q.heads() / p;
    int gkv = kvHeadsPerRank(k.heads(), p);
    int d = q.headDim();
    int n = Math.toIntExact(layout.total());

    // Sequence shards → head shards: peer j gets its query heads of our q rows and the K/V heads
    // those read of our k, v rows.
    float[][] got = comm.allToAll(splitHeads(p, g, gkv, k.heads(), q, k, v));
    int full = Blocks.floats(batch, n, g, d);
    int fullKv = Blocks.floats(batch, n, gkv, d);
    float[] qkv = new float[full + 2 * fullKv];
    BlockView[] qkvFull = {Blocks.view(qkv, 0, batch, n, g, d),
        Blocks.view(qkv, full, batch, n, gkv, d),
        Blocks.view(qkv, full + fullKv, batch, n, gkv, d)};
    toGlobal(got, qkvFull);

    float[] o = new float[full];
    float[] fullLse = new float[batch * n * g];
    kernel.forward(qkvFull[0], qkvFull[1], qkvFull[2], scale, mask.at(0, 0),
        Blocks.view(o, 0, batch, n, g, d), fullLse);
    qkv = null; // let it go before the return messages are allocated

    // Head shards → sequence shards: rank s gets its rows of our heads (and their LSE) back.
    BlockView oFull = Blocks.view(o, 0, batch, n, g, d);
    float[][] outs = comm.allToAll(lse == null ? fromGlobal(oFull)
        : fromGlobal(oFull, Blocks.lseView(fullLse, 0, batch, n, g)));
    if (lse == null) {
      fromHeads(outs, g, out);
    } else {
      fromHeads(outs, g, out, Blocks.lseView(lse, 0, batch, q.seq(), q.heads()));
    }
  }

  /**
   * The backward: the forward's all-to-alls transposed. The first moves q, k, v, O, dO and the LSE
   * from sequence shards to head shards, each rank runs the local backward over the whole
   * sequence for its H/p heads (heads are independent, so nothing else is needed), and the second
   * returns every rank its rows of dQ, dK and dV. Traffic: {@code 5·b·n_rank·g·d + b·n_rank·g}
   * floats out to each peer, {@code 3·b·n_s·g·d} back to each peer s.
   */
  @Override
  public void attendBackward(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse,
      BlockView dOut, float scale, AttentionMask mask, BlockView dq, BlockView dk, BlockView dv) {
    int p = comm.size();
    checkKvHeads(q.heads(), k.heads(), p);
    Blocks.checkGroupedShard(layout, comm.rank(), q, k, v, out);
    Blocks.checkGroupedShard(layout, comm.rank(), dOut, dk, dv, dq);
    int batch = q.batch();
    int g = q.heads() / p;
    int gkv = kvHeadsPerRank(k.heads(), p);
    int d = q.headDim();
    int n = Math.toIntExact(layout.total());

    float[][] got = comm.allToAll(splitHeads(p, g, gkv, k.heads(), q, k, v, out, dOut,
        Blocks.lseView(lse, 0, batch, q.seq(), q.heads())));
    int[] heads = {g, gkv, gkv, g, g}; // q, k, v, o, dO over the whole sequence, our heads
    BlockView[] in = new BlockView[5];
    for (int t = 0; t < 5; t++) {
      in[t] = Blocks.view(new float[Blocks.floats(batch, n, heads[t], d)], 0, batch, n, heads[t],
          d);
    }
    float[] fullLse = new float[batch * n * g];
    toGlobal(got, in[0], in[1], in[2], in[3], in[4], Blocks.lseView(fullLse, 0, batch, n, g));

    BlockView[] dFull = {Blocks.view(new float[Blocks.floats(batch, n, g, d)], 0, batch, n, g, d),
        Blocks.view(new float[Blocks.floats(batch, n, gkv, d)], 0, batch, n, gkv, d),
        Blocks.view(new float[Blocks.floats(batch, n, gkv, d)], 0, batch, n, gkv, d)};
    backwardKernel().backward(in[0], in[1], in[2], in[3], fullLse, in[4], scale, mask.at(0, 0),
        dFull[0], dFull[1], dFull[2], false);
    in = null;

    // dQ rows go back as they are; a replicated K/V head's dK/dV come back from every rank that
    // held it, each its query heads' share, and are summed.
    float[][] back = comm.allToAll(fromGlobal(dFull));
    Blocks.zero(dk);
    Blocks.zero(dv);
    for (int j = 0; j < p; j++) {
      int kv0 = firstKvHead(j, k.heads(), p);
      BlockView from = Blocks.view(back[j], 0, batch, q.seq(), g, d);
      Blocks.copy(from, 0, dq, j * g, g);
      int off = Blocks.floats(batch, q.seq(), g, d);
      for (BlockView x : new BlockView[] {dk, dv}) {
        addHeads(Blocks.view(back[j], off, batch, q.seq(), gkv, d), x, kv0);
        off += Blocks.floats(batch, q.seq(), gkv, d);
      }
    }
  }

  /**
   * Rows split by heads for the first all-to-all: entry j holds, one block after another, heads
   * {@code [j·g, (j+1)·g)} of each query-shaped block (every block but k and v, which are
   * {@code blocks[1]} and {@code blocks[2]}) and K/V heads {@code [firstKvHead(j), +gkv)} of k and
   * v.
   */
  private static float[][] splitHeads(int p, int g, int gkv, int kvHeads, BlockView... blocks) {
    int batch = blocks[0].batch();
    int rows = blocks[0].seq();
    float[][] send = new float[p][];
    for (int j = 0; j < p; j++) {
      int total = 0;
      for (int t = 0; t < blocks.length; t++) {
        int heads = t == 1 || t == 2 ? gkv : g;
        total = Math.addExact(total, Blocks.floats(batch, rows, heads, blocks[t].headDim()));
      }
      send[j] = new float[total];
      int off = 0;
      for (int t = 0; t < blocks.length; t++) {
        boolean kv = t == 1 || t == 2;
        int heads = kv ? gkv : g;
        int from = kv ? firstKvHead(j, kvHeads, p) : j * g;
        BlockView x = blocks[t];
        Blocks.copy(x, from, Blocks.view(send[j], off, batch, rows, heads, x.headDim()), 0,
            heads);
        off += Blocks.floats(batch, rows, heads, x.headDim());
      }
    }
    return send;
  }

  /** Adds every head of {@code src} into heads {@code [toHead, toHead + src.heads())} of dst. */
  private static void addHeads(BlockView src, BlockView dst, int toHead) {
    int len = src.heads() * src.headDim();
    for (int b = 0; b < src.batch(); b++) {
      for (int s = 0; s < src.seq(); s++) {
        int from = src.index(b, s, 0);
        int to = dst.index(b, s, toHead);
        for (int c = 0; c < len; c++) {
          dst.data()[to + c] += src.data()[from + c];
        }
      }
    }
  }

  /** The CPU backward kernel, made on first use (most strategies never train). */
  private CpuFlashAttentionBackward backwardKernel() {
    if (backward == null) {
      backward = new CpuFlashAttentionBackward(kernel instanceof CpuFlashAttention cpu
          ? cpu.threads() : Runtime.getRuntime().availableProcessors());
    }
    return backward;
  }

  @Override
  public void close() {
    if (backward != null) {
      backward.close();
      backward = null;
    }
  }

  /**
   * Messages from every rank s (its rows, in its local order, of each block in turn: what
   * {@link #splitHeads} packed) to the blocks' global positions in {@code full}; each
   * message is dropped once placed.
   */
  private void toGlobal(float[][] got, BlockView... full) {
    for (int s = 0; s < got.length; s++) {
      int rows = layout.size(s);
      int off = 0;
      for (BlockView f : full) {
        toGlobal(Blocks.view(got[s], off, f.batch(), rows, f.heads(), f.headDim()),
            layout.segments(s), f);
        off += Blocks.floats(f.batch(), rows, f.heads(), f.headDim());
      }
      got[s] = null;
    }
  }

  /** One message per rank s: its rows of each full-sequence block, one block after another. */
  private float[][] fromGlobal(BlockView... full) {
    float[][] msgs = new float[layout.parts()][];
    for (int s = 0; s < msgs.length; s++) {
      int rows = layout.size(s);
      int total = 0;
      for (BlockView f : full) {
        total = Math.addExact(total, Blocks.floats(f.batch(), rows, f.heads(), f.headDim()));
      }
      msgs[s] = new float[total];
      int off = 0;
      for (BlockView f : full) {
        fromGlobal(f, layout.segments(s),
            Blocks.view(msgs[s], off, f.batch(), rows, f.heads(), f.headDim()));
        off += Blocks.floats(f.batch(), rows, f.heads(), f.headDim());
      }
    }
    return msgs;
  }

  /** Rank j's message (g heads of our rows, per block) into heads {@code [j·g, (j+1)·g)}. */
  private static void fromHeads(float[][] msgs, int g, BlockView... dst) {
    for (int j = 0; j < msgs.length; j++) {
      int off = 0;
      for (BlockView x : dst) {
        Blocks.copy(Blocks.view(msgs[j], off, x.batch(), x.seq(), g, x.headDim()), 0, x, j * g,
            g);
        off += Blocks.floats(x.batch(), x.seq(), g, x.headDim());
      }
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
