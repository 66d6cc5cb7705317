package dev.mosaic.kernels;

import dev.mosaic.kernels.simd.BackwardOps;
import dev.mosaic.kernels.simd.BackwardVectorization;
import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The backward pass of {@link CpuFlashAttention} (FlashAttention-2's algorithm): from Q, K, V, the
 * output O, the forward's log-sum-exp and dO it computes dQ, dK and dV without ever holding a
 * (seqQ × seqK) matrix. For each (key tile, query tile) pair it recomputes {@code P} from
 * {@code Q·Kᵀ} and the LSE, then
 * <pre>
 *   dV += Pᵀ·dO      dP = dO·Vᵀ      dS = P∘(dP − D), D = rowsum(dO∘O)
 *   dK += dSᵀ·Q·scale                 dQ += dS·K·scale
 * </pre>
 * Tiles are transposed as in the forward (keys × queries, queries along the vector lanes), so the
 * LSE and D are column vectors and all five products are {@link FlashOps#gemm} calls; the
 * element-wise steps are {@link BackwardOps}. Masks are the forward's: a masked score is -inf, so
 * its P and dS are 0, and a query that sees no key (LSE = -inf) gets zero gradients.
 *
 * <p>Parallelism without races: the key tiles are the outer loop, so each worker owns the dK/dV
 * rows of the key tile it holds; dQ, which every key tile adds to, goes into one buffer per worker
 * (over (batch, head) pairs when there are enough of them: the worker owns the whole head) or one
 * per task (within one head: tasks take key tiles from a shared counter and their dQ buffers are
 * summed at the end). Memory is O(seq·headDim) per head being worked on — one packed copy of Q
 * and dO, twice, plus the dQ buffers — never O(seq²).
 *
 * <p>Grouped-query attention (fewer K/V heads than query heads, {@link AttentionKernel#kvHead})
 * is the same loop per query head; each K/V head's dK/dV sum its query heads' shares.
 *
 * <p>The kernel works on block pairs like the forward: with {@code accumulate} it adds into dQ,
 * dK and dV, so a ring can sum the contributions of several key blocks (given the global LSE and
 * the global O). Calls on one instance must not overlap.
 */
public final class CpuFlashAttentionBackward implements AutoCloseable {
  static final int QUERY_TILE = CpuFlashAttention.QUERY_TILE;
  static final int KEY_TILE = CpuFlashAttention.KEY_TILE;
  private static final float LOG2E = (float) (1.0 / Math.log(2));

  private final FlashOps gemm;
  private final BackwardOps ops;
  private final int threads;
  private final Parallel parallel;
  private final ThreadLocal<TileScratch> scratch = ThreadLocal.withInitial(TileScratch::new);
  private volatile Cancellation cancellation = Cancellation.NEVER;

  /** All available processors, the SIMD ops chosen at start-up. */
  public CpuFlashAttentionBackward() {
    this(Runtime.getRuntime().availableProcessors());
  }

  public CpuFlashAttentionBackward(int threads) {
    this(threads, VectorizationProvider.ops());
  }

  /** With these forward ops and the backward ops that pair with them (scalar for scalar). */
  public CpuFlashAttentionBackward(int threads, FlashOps gemm) {
    this(threads, gemm, BackwardVectorization.pairedWith(gemm));
  }

  public CpuFlashAttentionBackward(int threads, FlashOps gemm, BackwardOps ops) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    if (gemm.lanes() != ops.lanes()) {
      throw new IllegalArgumentException("backward ops " + ops.name() + " have " + ops.lanes()
          + " lanes, expected the GEMM's " + gemm.lanes() + " (" + gemm.name() + ")");
    }
    if (QUERY_TILE % gemm.lanes() != 0) {
      throw new IllegalArgumentException("vector width " + gemm.lanes() + " does not divide the"
          + " query tile " + QUERY_TILE);
    }
    this.gemm = gemm;
    this.ops = ops;
    this.threads = threads;
    this.parallel = new Parallel(threads, "mosaic-backward");
  }

  public int threads() {
    return threads;
  }

  public String name() {
    return "cpu-flash-backward(" + ops.name() + ", " + threads + " threads)";
  }

  /** Later calls ask {@code c} before every tile pair and throw its {@link CancelledException}. */
  public void cancelWith(Cancellation c) {
    this.cancellation = c == null ? Cancellation.NEVER : c;
  }

  @Override
  public void close() {
    parallel.close();
  }

  /**
   * Gradients of {@code sum(O·dO)} with respect to Q, K and V.
   *
   * @param q queries {@code (batch, seqQ, heads, headDim)}, as given to the forward
   * @param k keys {@code (batch, seqK, kvHeads, headDim)}, {@code kvHeads} dividing {@code heads}:
   *     grouped-query attention, whose dK/dV of a K/V head sum over the query heads reading it
   * @param v values, shaped like {@code k}
   * @param out the forward's output O, shaped like {@code q} (the full output when this is one
   *     block pair of a sharded sequence)
   * @param lse the forward's log-sum-exp (natural log), {@code [batch][seqQ][heads]}
   * @param dOut the gradient of the loss with respect to O, shaped like {@code q}
   * @param scale the forward's score scale
   * @param mask the forward's mask
   * @param dq receives dQ, shaped like {@code q}
   * @param dk receives dK, shaped like {@code k}
   * @param dv receives dV, shaped like {@code k}
   * @param accumulate add to dq, dk and dv instead of overwriting them
   */
  public void backward(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse,
      BlockView dOut, float scale, AttentionMask mask, BlockView dq, BlockView dk, BlockView dv,
      boolean accumulate) {
    AttentionKernel.checkShapes(q, k, v, out, lse);
    checkLike("dOut", dOut, q);
    checkLike("dq", dq, q);
    checkLike("dk", dk, k);
    checkLike("dv", dv, k);
    if (!accumulate) {
      zero(dq);
      zero(dk);
      zero(dv);
    }
    int kvHeads = k.heads();
    int group = q.heads() / kvHeads; // query heads per K/V head (1 unless grouped-query)
    // Work is split by (batch, K/V head): its dK/dV rows have one owner, which sums the shares of
    // the head's query group one query head after another, so no two workers add to one row.
    int pairs = q.batch() * kvHeads;
    if (pairs == 0 || q.seq() == 0 || k.seq() == 0) {
      return;
    }
    Problem p = new Problem(q, k, v, out, lse, dOut, scale, mask, dq, dk, dv, cancellation);
    if (threads == 1 || pairs >= 2 * threads) {
      parallel.forEach(pairs, i -> {
        HeadPack pack = scratch.get().headPack(q.seq(), q.headDim(), ops.lanes());
        int b = i / kvHeads;
        for (int h = (i % kvHeads) * group; h < (i % kvHeads + 1) * group; h++) {
          pack.load(p, b, h, LOG2E);
          float[] dqAcc = scratch.get().dqBuffer(pack.dqSize());
          for (int j = 0; j < p.keyTiles(); j++) {
            keyTile(p, pack, j, dqAcc);
          }
          pack.addQueryGradient(p, dqAcc, 0, pack.queryTiles());
        }
      });
    } else {
      HeadPack pack = new HeadPack(q.seq(), q.headDim(), ops.lanes());
      float[][] dqAcc = new float[threads][pack.dqSize()];
      for (int pair = 0; pair < q.batch() * q.heads(); pair++) {
        pack.load(p, pair / q.heads(), pair % q.heads(), LOG2E);
        AtomicInteger nextTile = new AtomicInteger();
        parallel.forEach(threads, task -> {
          // Tasks pull key tiles in order: under a causal mask the first tiles are seen by the
          // most queries, so the big pieces go first and the small ones even out the end. A key
          // tile's dK/dV rows belong to the task holding it; query heads run one at a time.
          Arrays.fill(dqAcc[task], 0f);
          for (int j; (j = nextTile.getAndIncrement()) < p.keyTiles(); ) {
            keyTile(p, pack, j, dqAcc[task]);
          }
        });
        parallel.forEach(pack.queryTiles(), t -> {
          for (float[] acc : dqAcc) {
            pack.addQueryGradient(p, acc, t, t + 1);
          }
        });
      }
    }
  }

  /** One key tile of one head against every query tile that sees any of its keys. */
  private void keyTile(Problem p, HeadPack pack, int tile, float[] dqAcc) {
    int d = p.q().headDim();
    int dPad = pack.dPad;
    int j0 = tile * KEY_TILE;
    int keyEnd = p.mask().visibleKeyEnd(0, p.q().seq(), p.k().seq());
    if (j0 >= keyEnd) {
      return; // beyond the key bound (or after every query): no gradient
    }
    int valid = Math.min(KEY_TILE, p.k().seq() - j0);
    TileScratch s = scratch.get();
    s.ensure(d, dPad);
    float[] st = s.scores;
    float[] dpt = s.scoreGrads;
    float[] dkAcc = s.dk;
    float[] dvAcc = s.dv;
    Arrays.fill(dkAcc, 0, valid * dPad, 0f);
    Arrays.fill(dvAcc, 0, valid * dPad, 0f);
    float[] kt = s.packKeysTransposed(p.k(), pack.b, pack.kvh, j0, valid);
    BlockView k = p.k();
    BlockView v = p.v();
    int kRow = k.index(pack.b, j0, pack.kvh);
    int vRow = v.index(pack.b, j0, pack.kvh);
    for (int t = 0; t < pack.queryTiles(); t++) {
      int q0 = t * QUERY_TILE;
      int rows = Math.min(QUERY_TILE, p.q().seq() - q0);
      if (p.mask().visibleKeyEnd(q0, q0 + rows, p.k().seq()) <= j0) {
        continue; // no query of this tile sees a key of this tile
      }
      p.stop().check();
      int width = CpuFlashAttention.roundUp(rows, ops.lanes());
      int qtOff = t * d * QUERY_TILE;
      int rowOff = q0 * dPad;
      // Sᵀ (valid × width) = K_tile·Qᵀ, in base 2 (scale·log2 e is folded into the packed Qᵀ)
      gemm.gemm(k.data(), kRow, k.rowStride(), valid, d, pack.qt, qtOff, QUERY_TILE, st, 0,
          QUERY_TILE, width, false);
      if (!p.mask().fullyVisible(q0, q0 + rows, j0, j0 + valid)) {
        CpuFlashAttention.maskTile(st, QUERY_TILE, rows, valid, p.mask(), q0, j0);
      }
      ops.probabilities(st, 0, QUERY_TILE, valid, width, pack.lse2Tile(t));
      // dPᵀ (valid × width) = V_tile·dOᵀ
      gemm.gemm(v.data(), vRow, v.rowStride(), valid, d, pack.dot, qtOff, QUERY_TILE, dpt, 0,
          QUERY_TILE, width, false);
      // dV (valid × dPad) += Pᵀ·dO; only the tile's real query columns are summed over.
      gemm.gemm(st, 0, QUERY_TILE, valid, rows, pack.dO, rowOff, dPad, dvAcc, 0, dPad, dPad,
          true);
      ops.softmaxGrad(st, dpt, 0, QUERY_TILE, valid, width, pack.dTile(t));
      // dK (valid × dPad) += dSᵀ·Q (scale applied when written out)
      gemm.gemm(dpt, 0, QUERY_TILE, valid, rows, pack.q, rowOff, dPad, dkAcc, 0, dPad, dPad,
          true);
      // dQᵀ (d × width) += Kᵀ_tile·dSᵀ
      gemm.gemm(kt, 0, KEY_TILE, d, valid, dpt, 0, QUERY_TILE, dqAcc, qtOff, QUERY_TILE, width,
          true);
    }
    writeKeyGradients(p, pack, j0, valid, dkAcc, dvAcc);
  }

  private static void writeKeyGradients(Problem p, HeadPack pack, int j0, int valid,
      float[] dkAcc, float[] dvAcc) {
    int d = p.k().headDim();
    float[] dk = p.dk().data();
    float[] dv = p.dv().data();
    for (int r = 0; r < valid; r++) {
      int ki = p.dk().index(pack.b, j0 + r, pack.kvh);
      int vi = p.dv().index(pack.b, j0 + r, pack.kvh);
      int src = r * pack.dPad;
      for (int c = 0; c < d; c++) {
        dk[ki + c] += dkAcc[src + c] * p.scale();
        dv[vi + c] += dvAcc[src + c];
      }
    }
  }

  private static void checkLike(String name, BlockView a, BlockView like) {
    if (a.batch() != like.batch() || a.seq() != like.seq() || a.heads() != like.heads()
        || a.headDim() != like.headDim()) {
      throw new IllegalArgumentException(name + " must be shaped (" + like.batch() + ", "
          + like.seq() + ", " + like.heads() + ", " + like.headDim() + "), got (" + a.batch()
          + ", " + a.seq() + ", " + a.heads() + ", " + a.headDim() + ")");
    }
  }

  private static void zero(BlockView x) {
    for (int b = 0; b < x.batch(); b++) {
      for (int s = 0; s < x.seq(); s++) {
        int i = x.index(b, s, 0);
        Arrays.fill(x.data(), i, i + x.heads() * x.headDim(), 0f);
      }
    }
  }

  /** One call's arguments, handed to the workers as one value. */
  record Problem(BlockView q, BlockView k, BlockView v, BlockView out, float[] lse,
      BlockView dOut, float scale, AttentionMask mask, BlockView dq, BlockView dk, BlockView dv,
      Cancellation stop) {
    int keyTiles() {
      return (k.seq() + KEY_TILE - 1) / KEY_TILE;
    }
  }

  /** Per-thread buffers of one key tile, grown on demand and reused across calls. */
  private static final class TileScratch {
    final float[] scores = new float[KEY_TILE * QUERY_TILE];
    final float[] scoreGrads = new float[KEY_TILE * QUERY_TILE];
    float[] dk = new float[0];
    float[] dv = new float[0];
    float[] kt = new float[0];
    float[] dq = new float[0];
    HeadPack pack;

    void ensure(int d, int dPad) {
      if (dk.length < KEY_TILE * dPad) {
        dk = new float[KEY_TILE * dPad];
        dv = new float[KEY_TILE * dPad];
      }
      if (kt.length < d * KEY_TILE) {
        kt = new float[d * KEY_TILE];
      }
    }

    /** Kᵀ of one tile, {@code (headDim, KEY_TILE)}: the dQ product streams its rows. */
    float[] packKeysTransposed(BlockView k, int b, int h, int j0, int valid) {
      int d = k.headDim();
      float[] kd = k.data();
      for (int j = 0; j < valid; j++) {
        int src = k.index(b, j0 + j, h);
        for (int c = 0; c < d; c++) {
          kt[c * KEY_TILE + j] = kd[src + c];
        }
      }
      return kt;
    }

    float[] dqBuffer(int size) {
      if (dq.length < size) {
        dq = new float[size];
      } else {
        Arrays.fill(dq, 0, size, 0f);
      }
      return dq;
    }

    HeadPack headPack(int seqQ, int d, int lanes) {
      if (pack == null || !pack.fits(seqQ, d, lanes)) {
        pack = new HeadPack(seqQ, d, lanes);
      }
      return pack;
    }
  }
}
