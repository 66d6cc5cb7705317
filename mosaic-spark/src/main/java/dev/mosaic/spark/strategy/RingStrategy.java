package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.CpuFlashAttentionBackward;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.comm.WireDtype;

/**
 * Ring attention: rank r keeps its queries; the K/V blocks travel around the ring r → r+1. At
 * each of the p steps the rank starts sending the block it holds to its successor and receiving
 * the next one from its predecessor, computes attention of its queries against the block it holds
 * while the transfer runs (double buffer), then LSE-merges the partial into its output. Block
 * pairs that the mask hides entirely are skipped. Uneven shards and zigzag layouts work: the
 * layout says where each rank's rows sit.
 *
 * <p>Cross-attention: with a second layout for the keys ({@link #RingStrategy(Communicator,
 * ShardLayout, ShardLayout, AttentionKernel)}) the queries and the travelling K/V come from
 * different sequences, of different lengths and sharding; the mask then compares a query's
 * position in its sequence with a key's position in the other.
 *
 * <p>Grouped-query attention: K/V with fewer heads than the queries travel as they are, so the
 * ring moves numHeads/numKvHeads times fewer bytes ({@link #bytesSent}); the kernel maps each
 * query head to its K/V head.
 *
 * <p>The backward ({@link #attendBackward}) runs the ring once more with the dK/dV accumulators
 * travelling behind the K/V blocks; it needs the LSE that {@link #attend(BlockView, BlockView,
 * BlockView, float, AttentionMask, BlockView, float[])} writes. Closing releases the backward
 * kernel's threads (the forward kernel belongs to the caller).
 *
 * <p>The forward's K/V blocks go through {@link Communicator#sendRecvActivations}, so on TCP with
 * {@code spark.mosaic.comm.wireDtype=bf16} they travel rounded to bf16 (computing stays fp32). The
 * backward's K/V and dK/dV accumulators always travel in fp32: the accumulators are sums that
 * would take a rounding per hop, and K/V must match what the gradients are taken of.
 */
public final class RingStrategy implements Strategy {
  private final Communicator comm;
  private final ShardLayout layout; // where each rank's queries sit
  private final ShardLayout keyLayout; // where its keys/values sit: the same for self-attention
  private final AttentionKernel kernel;
  private final RingBlocks.Factory blocks;
  private CpuFlashAttentionBackward backward;

  /** K/V blocks on the GPU when comm is NCCL and kernel the CUDA one, else in host arrays. */
  public RingStrategy(Communicator comm, ShardLayout layout, AttentionKernel kernel) {
    this(comm, layout, kernel, RingBlocks.choose(comm, kernel));
  }

  /** With the blocks kept by {@code blocks} (host arrays or device memory). */
  public RingStrategy(Communicator comm, ShardLayout layout, AttentionKernel kernel,
      RingBlocks.Factory blocks) {
    this(comm, layout, layout, kernel, blocks);
  }

  /**
   * Cross-attention: rank r's queries sit at {@code queryLayout.segments(r)} of the query
   * sequence, its keys and values at {@code keyLayout.segments(r)} of the key/value sequence
   * (shards may differ in size, or be empty, in either). The K/V shards travel.
   */
  public RingStrategy(Communicator comm, ShardLayout queryLayout, ShardLayout keyLayout,
      AttentionKernel kernel) {
    this(comm, queryLayout, keyLayout, kernel, RingBlocks.choose(comm, kernel));
  }

  /** Cross-attention with the blocks kept by {@code blocks}. */
  public RingStrategy(Communicator comm, ShardLayout queryLayout, ShardLayout keyLayout,
      AttentionKernel kernel, RingBlocks.Factory blocks) {
    Blocks.checkLayout(queryLayout, comm.size());
    Blocks.checkLayout(keyLayout, comm.size());
    this.comm = comm;
    this.layout = queryLayout;
    this.keyLayout = keyLayout;
    this.kernel = kernel;
    this.blocks = blocks;
  }

  @Override
  public String name() {
    return "ring(p=" + comm.size() + ")";
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attend}, as
   * {@link Communicator#bytesSent()} counts them: the p−1 K/V blocks it passes on, block of step s
   * being rank (rank − s)'s shard: {@code 4·2·b·g·d·Σ_{s<p−1} n_{rank−s}}; with even shards
   * {@code 8·b·g·d·n·(p−1)/p}. {@code heads} is g, the K/V heads that travel: the head count
   * for multi-head attention, the K/V head count under grouped-query attention (only those
   * travel, so the traffic is that of MHA divided by numHeads/numKvHeads). For cross-attention
   * pass the key layout.
   */
  public static long bytesSent(ShardLayout layout, int rank, int batch, int heads, int headDim) {
    return bytesSent(layout, rank, batch, heads, headDim, WireDtype.FP32);
  }

  /**
   * As above with the K/V blocks on the wire as {@code wire} ({@code spark.mosaic.comm.wireDtype}
   * on TCP): bf16 sends {@code 2·2·b·h·d·Σ n}, half of fp32.
   */
  public static long bytesSent(ShardLayout layout, int rank, int batch, int heads, int headDim,
      WireDtype wire) {
    int p = layout.parts();
    long rows = 0;
    for (int s = 0; s < p - 1; s++) {
      rows += layout.size(Math.floorMod(rank - s, p));
    }
    return (long) wire.bytes() * 2 * batch * rows * heads * headDim;
  }

  /**
   * Bytes of the arrays one rank holds during {@link #attend} for an input of {@code batch}
   * sequences: its q/k/v/out shards, two K/V transfer buffers sized for the largest shard, the
   * output accumulator and one partial with their log-sum-exps. The kernel's per-thread tiles
   * (a few hundred KiB) come on top.
   */
  public static long workingSetBytes(ShardLayout layout, int rank, int batch, int heads,
      int headDim) {
    long row = (long) heads * headDim;
    long mine = (long) batch * layout.size(rank);
    long largest = (long) batch * layout.maxSize();
    long floats = 4 * mine * row // q, k, v, out
        + 2 * 2 * largest * row // current and next [K | V]
        + 2 * mine * row // accumulator and partial
        + 2 * mine * heads; // their log-sum-exps
    return 4 * floats;
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attendBackward}: the p−1 K/V blocks
   * of the forward ring plus p dK/dV accumulators, one per block (each block's accumulator makes p
   * hops, the last one home): {@code 4·2·b·g·d·(Σ_{s<p−1} n_{rank−s} + n)}, or 0 for p = 1;
   * {@code heads} is g, the K/V heads (as in {@link #bytesSent}). For cross-attention pass the
   * key layout.
   */
  public static long backwardBytesSent(ShardLayout layout, int rank, int batch, int heads,
      int headDim) {
    if (layout.parts() == 1) {
      return 0; // one rank sends to itself, which is not counted
    }
    return bytesSent(layout, rank, batch, heads, headDim)
        + 4L * 2 * batch * layout.total() * heads * headDim;
  }

  /**
   * Bytes of the arrays one rank holds during {@link #attendBackward}: its q, k, v, out, dO, dq,
   * dk and dv shards, five packed [K | V]-sized buffers for the largest shard (current and next
   * K/V, our share of dK/dV, the one being sent, the one arriving), and the LSE twice.
   */
  public static long backwardWorkingSetBytes(ShardLayout layout, int rank, int batch, int heads,
      int headDim) {
    long row = (long) heads * headDim;
    long mine = (long) batch * layout.size(rank);
    long largest = (long) batch * layout.maxSize();
    return 4 * (8 * mine * row + 5 * 2 * largest * row + 2 * mine * heads);
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    attend(q, k, v, scale, mask, out, null);
  }

  /** The forward ring; also writes our queries' log-sum-exp unless {@code lse} is null. */
  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    int p = comm.size();
    int rank = comm.rank();
    checkRows(q, k, v);
    int succ = (rank + 1) % p;
    int pred = (rank + p - 1) % p;
    // Two K/V buffers: one computed on, one being received (double buffer).
    try (RingBlocks held = blocks.open(q, k, v, layout.segments(rank), keyLayout.maxSize(),
        scale, mask)) {
      for (int step = 0; step < p; step++) {
        int src = (rank - step + p) % p; // whose K/V we hold now
        Communicator.Transfer transfer = null;
        if (step < p - 1) {
          int nextSrc = (src - 1 + p) % p;
          transfer = held.pass(keyLayout.size(src), succ, keyLayout.size(nextSrc), pred);
        }
        held.attend(keyLayout.segments(src));
        if (transfer != null) {
          held.arrived(transfer);
        }
      }
      held.finish(out, lse);
    }
  }

  /**
   * The backward ring. With the global O and LSE every (query block i, key block j) pair is
   * independent: P_ij = exp(Q_i·K_jᵀ·scale − LSE_i), D_i = rowsum(dO_i∘O_i), and
   * <pre>
   *   dQ_i = Σ_j dS_ij·K_j·scale      dK_j = Σ_i dS_ijᵀ·Q_i·scale      dV_j = Σ_i P_ijᵀ·dO_i
   *   with dS_ij = P_ij∘(dO_i·V_jᵀ − D_i)
   * </pre>
   * So rank i keeps Q_i, O_i, LSE_i, dO_i and its dQ_i, while each K/V block travels the ring as in
   * the forward, followed by its dK/dV accumulator: at step s rank r holds block j = r − s, adds
   * its share into a fresh buffer (while the next K/V block arrives), adds the accumulator that
   * the predecessor passed on (the shares of ranks j .. r−1, sent during our compute), and passes
   * the sum on. After p steps the accumulator of block j has visited every rank and its last hop
   * (from rank j−1) brings it home.
   */
  @Override
  public void attendBackward(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse,
      BlockView dOut, float scale, AttentionMask mask, BlockView dq, BlockView dk, BlockView dv) {
    int p = comm.size();
    int rank = comm.rank();
    checkRows(q, k, v);
    int maxLength = QueryAccumulator.packedLength(k, keyLayout.maxSize());
    float[] kv = new float[maxLength];
    float[] kvNext = new float[maxLength];
    float[] dkv = new float[maxLength]; // our share of the block we hold, then the running sum
    float[] dkvSending = new float[maxLength];
    float[] dkvArrived = new float[maxLength];
    QueryAccumulator.pack(k, v, kv);
    QueryGradients grads = new QueryGradients(q, k.heads(), out, lse, dOut, dq,
        layout.segments(rank), backwardKernel(), scale, mask);

    int succ = (rank + 1) % p;
    int pred = (rank + p - 1) % p;
    Communicator.Transfer dkvTransfer = null;
    for (int step = 0; step < p; step++) {
      int src = (rank - step + p) % p; // whose K/V (and accumulator) we hold now
      int prevSrc = (src - 1 + p) % p; // what the predecessor sends next: its K/V, its dK/dV sum
      int length = QueryAccumulator.packedLength(k, keyLayout.size(src));
      Communicator.Transfer kvTransfer = step < p - 1 ? comm.sendRecv(kv, 0, length, succ, kvNext,
          0, QueryAccumulator.packedLength(k, keyLayout.size(prevSrc)), pred) : null;
      java.util.Arrays.fill(dkv, 0, length, 0f);
      grads.attend(kv, dkv, keyLayout.segments(src));
      if (dkvTransfer != null) {
        dkvTransfer.await(); // the shares of ranks src .. rank−1
        add(dkvArrived, dkv, length);
      }
      float[] t = dkvSending;
      dkvSending = dkv;
      dkv = t;
      if (p > 1) { // at the last step src = succ: this hop brings the finished sum home
        dkvTransfer = comm.sendRecv(dkvSending, 0, length, succ, dkvArrived, 0,
            QueryAccumulator.packedLength(k, keyLayout.size(prevSrc)), pred);
      }
      if (kvTransfer != null) {
        kvTransfer.await();
        t = kv;
        kv = kvNext;
        kvNext = t;
      }
    }
    if (dkvTransfer != null) {
      dkvTransfer.await();
    }
    QueryGradients.unpack(p > 1 ? dkvArrived : dkvSending, dk, dv);
  }

  /** Before any transfer, so that a bad call fails on this rank instead of hanging its peers. */
  private void checkRows(BlockView q, BlockView k, BlockView v) {
    int rank = comm.rank();
    if (q.seq() != layout.size(rank)) {
      throw new IllegalArgumentException("rank " + rank + " got " + q.seq()
          + " rows but its shard holds " + layout.size(rank));
    }
    int keys = keyLayout.size(rank);
    if (k.seq() != keys || v.seq() != keys) {
      throw new IllegalArgumentException("rank " + rank + " got " + k.seq() + " key and "
          + v.seq() + " value rows but its key/value shard holds " + keys);
    }
    Blocks.checkKvHeads(q, k, v);
  }

  private static void add(float[] from, float[] to, int length) {
    for (int i = 0; i < length; i++) {
      to[i] += from[i];
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
}
