package dev.mosaic.kernels;

import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.util.Arrays;

/**
 * Flash-style attention on the CPU: for each (batch, head) and each tile of
 * {@value #QUERY_TILE} queries it walks the visible key tiles of {@value #KEY_TILE} keys, keeping a
 * running max and sum per query (online softmax) and an un-normalised output accumulator. Memory
 * is O(tile²) per thread plus one packed copy of a head's V — never a (seqQ × seqK) matrix.
 *
 * <p>Everything is computed transposed, queries along the vector lanes: scores as
 * {@code Sᵀ = K·Qᵀ} (keys × queries) and the output as {@code Oᵀ += Vᵀ·Pᵀ} (headDim × queries).
 * The softmax statistics of a query are then a column, updated with plain vector ops (no
 * horizontal reductions), and both products are register-blocked GEMMs whose width is the query
 * tile, so small head dims (8, 16) run as well as large ones. Scores are kept in base 2
 * ({@code scale·log2 e} is folded into Q) so the exponential is a cheap {@code 2^x}. The dense
 * loops live in {@link FlashOps}, SIMD or scalar.
 *
 * <p>Grouped-query attention (K/V with fewer heads than Q) reads query head h's keys and values
 * from K/V head {@link AttentionKernel#kvHead}: nothing is copied or repeated.
 *
 * <p>Parallelism: over (batch, head) pairs when there are enough of them, otherwise over query
 * tiles of one head at a time. Thread count is fixed per instance. A {@link Cancellation} given to
 * {@link #cancelWith} is asked before every key tile in every worker; when it says stop, all
 * workers stop and {@code forward} throws {@link CancelledException} (the output is then partly
 * written, and the kernel is ready for the next call).
 */
public final class CpuFlashAttention implements AttentionKernel {
  static final int QUERY_TILE = 64;
  static final int KEY_TILE = 64;
  private static final float LOG2E = (float) (1.0 / Math.log(2));
  private static final float LN2 = (float) Math.log(2);
  /** How far (base 2) a score may pass a query's reference max before it moves: P <= 2^8. */
  private static final float RESCALE_SLACK = 8f;

  private final FlashOps ops;
  private final int threads;
  private final Parallel parallel;
  private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);
  private volatile Cancellation cancellation = Cancellation.NEVER;

  /** All available processors, the SIMD ops chosen at start-up. */
  public CpuFlashAttention() {
    this(Runtime.getRuntime().availableProcessors());
  }

  public CpuFlashAttention(int threads) {
    this(threads, VectorizationProvider.ops());
  }

  public CpuFlashAttention(int threads, FlashOps ops) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    if (QUERY_TILE % ops.lanes() != 0) {
      throw new IllegalArgumentException("vector width " + ops.lanes() + " does not divide the"
          + " query tile " + QUERY_TILE);
    }
    this.threads = threads;
    this.ops = ops;
    this.parallel = new Parallel(threads, "mosaic-kernel");
  }

  public int threads() {
    return threads;
  }

  @Override
  public String name() {
    return "cpu-flash(" + ops.name() + ", " + threads + " threads)";
  }

  @Override
  public void close() {
    parallel.close();
  }

  /**
   * Later {@link #forward} calls ask {@code c} before every key tile, in every worker, and throw
   * its {@link CancelledException} (after all workers have stopped) when it says to stop.
   */
  @Override
  public void cancelWith(Cancellation c) {
    this.cancellation = c == null ? Cancellation.NEVER : c;
  }

  @Override
  public void forward(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    AttentionKernel.checkShapes(q, k, v, out, lse);
    int pairs = q.batch() * q.heads();
    int queryTiles = (q.seq() + QUERY_TILE - 1) / QUERY_TILE;
    if (pairs == 0 || q.seq() == 0) {
      return;
    }
    float qScale = scale * LOG2E;
    Cancellation stop = cancellation; // one volatile read per call; workers share it
    if (threads == 1 || pairs >= 2 * threads || queryTiles == 1) {
      parallel.forEach(pairs, p -> {
        int b = p / q.heads();
        int h = p % q.heads();
        float[] vt = scratch.get().packValues(v, b, kvHead(h, q, k));
        for (int t = 0; t < queryTiles; t++) {
          queryTile(q, k, vt, qScale, mask, out, lse, b, h, t, stop);
        }
      });
    } else {
      for (int p = 0; p < pairs; p++) {
        int b = p / q.heads();
        int h = p % q.heads();
        float[] vt = packValues(v, b, kvHead(h, q, k), null);
        parallel.forEach(queryTiles,
            t -> queryTile(q, k, vt, qScale, mask, out, lse, b, h, t, stop));
      }
    }
  }

  /**
   * Many sequences packed into one buffer ({@link VarlenSequences}): each query tile of a
   * sequence runs the same tile loop as {@link #forward} over row views of its own sequence, so
   * no padding and no cross-sequence score is ever computed. Threads take (sequence, head, run of
   * tiles) units balanced by cost ({@link VarlenWork}); the numbers do not depend on the split.
   */
  @Override
  public void forwardVarlen(BlockView q, BlockView k, BlockView v, VarlenSequences seqs,
      float scale, AttentionMask mask, BlockView out, float[] lse) {
    AttentionKernel.checkShapes(q, k, v, out, lse);
    seqs.checkRows(q, k);
    int heads = q.heads();
    VarlenWork.Unit[] units =
        VarlenWork.plan(seqs, q.batch() * heads, mask, QUERY_TILE, ops.lanes(), threads);
    float qScale = scale * LOG2E;
    Cancellation stop = cancellation;
    parallel.forEach(units.length, u -> {
      VarlenWork.Unit w = units[u];
      int s = w.seq();
      int b = w.head() / heads;
      int h = w.head() % heads;
      int q0 = seqs.queryStart(s);
      int nq = seqs.queries(s);
      int k0 = seqs.keyStart(s);
      int nk = seqs.keys(s);
      BlockView qs = VarlenSequences.batchRows(q, b, q0, nq);
      BlockView ks = VarlenSequences.batchRows(k, b, k0, nk);
      BlockView os = VarlenSequences.batchRows(out, b, q0, nq);
      AttentionMask ms = seqs.mask(s, mask);
      float[] vt = scratch.get().packValues(VarlenSequences.batchRows(v, b, k0, nk), 0,
          kvHead(h, q, k));
      int lseBase = (b * q.seq() + q0) * heads;
      for (int t = w.tileFrom(); t < w.tileTo(); t++) {
        queryTile(qs, ks, vt, qScale, ms, os, lse, 0, h, t, stop, lseBase);
      }
    });
  }

  private void queryTile(BlockView q, BlockView k, float[] vt, float qScale, AttentionMask mask,
      BlockView out, float[] lse, int b, int h, int tile, Cancellation stop) {
    queryTile(q, k, vt, qScale, mask, out, lse, b, h, tile, stop, 0);
  }

  /**
   * One tile of queries of one (batch, head) against all visible keys, asking {@code stop} before
   * each key tile (one interface call per 64×64×headDim×2 FMAs: nothing next to the tile's work).
   * Its lse values go to {@code lseBase} plus their index in {@code q} (a varlen sequence's rows).
   */
  private void queryTile(BlockView q, BlockView k, float[] vt, float qScale, AttentionMask mask,
      BlockView out, float[] lse, int b, int h, int tile, Cancellation stop, int lseBase) {
    int d = q.headDim();
    int kh = kvHead(h, q, k);
    int q0 = tile * QUERY_TILE;
    int rows = Math.min(QUERY_TILE, q.seq() - q0);
    int width = roundUp(rows, ops.lanes()); // query columns, padded to whole vectors
    Scratch s = scratch.get();
    s.ensure(d);
    float[] qt = s.qt;
    float[] st = s.scores;
    float[] ot = s.acc;
    float[] m = s.max;
    float[] mNew = s.newMax;
    float[] shift = s.shift;
    float[] alpha = s.alpha;
    float[] l = s.sum;
    float[] lEntry = s.sumEntry;

    // Qᵀ (headDim × width), scaled; padded query columns are zero and never read back.
    float[] qd = q.data();
    Arrays.fill(qt, 0, d * width, 0f);
    for (int r = 0; r < rows; r++) {
      int src = q.index(b, q0 + r, h);
      for (int c = 0; c < d; c++) {
        qt[c * width + r] = qd[src + c] * qScale;
      }
    }
    Arrays.fill(m, 0, width, Float.NEGATIVE_INFINITY);
    Arrays.fill(l, 0, width, 0f);
    Arrays.fill(ot, 0, d * width, 0f);

    int keys = k.seq();
    int keyEnd = mask.visibleKeyEnd(q0, q0 + rows, keys);
    for (int j0 = 0; j0 < keyEnd; j0 += KEY_TILE) {
      stop.check();
      int valid = Math.min(KEY_TILE, keyEnd - j0);
      boolean partial = !mask.fullyVisible(q0, q0 + rows, j0, j0 + valid);
      scoreTile(k, b, kh, j0, valid, d, qt, st, width, rows, mask, q0, partial);
      // After the first key tile a query's reference max rarely moves (lazy rescaling, below),
      // so take the column maxima in the same pass as the exponentials, with the reference as
      // it stands; the rare tile where a max passes it by more than the slack is undone and
      // redone in two passes. Either way the bits are those of the two-pass path.
      boolean done = false;
      if (j0 > 0) {
        System.arraycopy(m, 0, mNew, 0, width);
        System.arraycopy(l, 0, lEntry, 0, width);
        done = !ops.exp2ColumnsTrackingMax(st, 0, width, valid, width, shift, l, mNew,
            RESCALE_SLACK);
        if (!done) {
          System.arraycopy(lEntry, 0, l, 0, width);
          scoreTile(k, b, kh, j0, valid, d, qt, st, width, rows, mask, q0, partial);
        }
      }
      if (!done) {
        System.arraycopy(m, 0, mNew, 0, width);
        ops.colMax(st, 0, width, valid, width, mNew);
        boolean moved = rescale(m, mNew, shift, alpha, l, width);
        ops.exp2Columns(st, 0, width, valid, width, shift, l);
        if (moved) {
          ops.scaleColumns(ot, 0, width, d, width, alpha);
        }
      }
      // Oᵀ (headDim × width) += Vᵀ_tile · Pᵀ
      ops.gemm(vt, j0 * d, KEY_TILE, d, valid, st, 0, width, ot, 0, width, width, true);
    }

    float[] od = out.data();
    for (int r = 0; r < rows; r++) {
      int dst = out.index(b, q0 + r, h);
      int li = lseBase + (b * q.seq() + q0 + r) * q.heads() + h;
      if (l[r] == 0f) {
        Arrays.fill(od, dst, dst + d, 0f);
        lse[li] = Float.NEGATIVE_INFINITY;
      } else {
        float inv = 1f / l[r];
        for (int c = 0; c < d; c++) {
          od[dst + c] = ot[c * width + r] * inv;
        }
        lse[li] = (m[r] + (float) (Math.log(l[r]) / Math.log(2))) * LN2;
      }
    }
  }

  /** Sᵀ (valid keys × width) = K_tile · Qᵀ, K read in place; masked scores -inf. */
  private void scoreTile(BlockView k, int b, int kh, int j0, int valid, int d, float[] qt,
      float[] st, int width, int rows, AttentionMask mask, int q0, boolean partial) {
    ops.gemm(k.data(), k.index(b, j0, kh), k.rowStride(), valid, d, qt, 0, width, st, 0, width,
        width, false);
    if (partial) {
      maskTile(st, width, rows, valid, mask, q0, j0);
    }
  }

  /**
   * Lazy rescaling: a query's reference max {@code m} moves to {@code mNew} only when a score
   * passes it by more than RESCALE_SLACK, so after the first tiles the accumulator is almost
   * never rescaled; the probabilities below the stale max stay under 2^RESCALE_SLACK, harmless
   * in fp32, and dividing by the sum at the end cancels the reference either way. Sets the
   * shifts for the exponentials and the factors {@code alpha} for the accumulator (and applies
   * them to the sums {@code l}); returns whether any moved.
   */
  private static boolean rescale(float[] m, float[] mNew, float[] shift, float[] alpha,
      float[] l, int width) {
    boolean moved = false;
    for (int c = 0; c < width; c++) {
      if (mNew[c] > m[c] + RESCALE_SLACK) { // -inf + slack stays -inf
        alpha[c] = m[c] == Float.NEGATIVE_INFINITY ? 0f
            : (float) Math.exp((m[c] - mNew[c]) * LN2);
        l[c] *= alpha[c];
        m[c] = mNew[c];
        moved = true;
      } else {
        alpha[c] = 1f;
      }
      // A query that has seen no key yet keeps max -inf: shift by 0 so 2^(-inf) stays 0.
      shift[c] = m[c] == Float.NEGATIVE_INFINITY ? 0f : m[c];
    }
    return moved;
  }

  /**
   * Sets masked scores of a tile to -inf. Both masks hide a prefix-closed set: key j is visible
   * to query i iff j &lt; end(i), and end(i) never decreases with i, so in key row j the hidden
   * queries are a prefix of the columns. Shared with {@link CpuFlashAttentionBackward}, whose
   * recomputed probabilities must hide exactly what the forward hid.
   */
  static void maskTile(float[] st, int width, int rows, int valid, AttentionMask mask,
      int q0, int j0) {
    int i = 0; // first query column that sees key row j (non-decreasing in j)
    for (int j = 0; j < valid; j++) {
      while (i < rows && mask.visibleKeyEnd(q0 + i, q0 + i + 1, Integer.MAX_VALUE) <= j0 + j) {
        i++;
      }
      if (i > 0) {
        Arrays.fill(st, j * width, j * width + i, Float.NEGATIVE_INFINITY);
      }
    }
  }

  /** Query head h's K/V head (grouped-query attention; h itself when the counts agree). */
  static int kvHead(int h, BlockView q, BlockView k) {
    return AttentionKernel.kvHead(h, q.heads(), k.heads());
  }

  static int roundUp(int x, int m) {
    return (x + m - 1) / m * m;
  }

  /**
   * One head's values transposed tile by tile: tile t holds {@code (headDim, KEY_TILE)} at
   * {@code t·headDim·KEY_TILE}, so the output GEMM streams contiguous rows of Vᵀ.
   */
  private static float[] packValues(BlockView v, int b, int h, float[] reuse) {
    int d = v.headDim();
    int keys = v.seq();
    int tiles = (keys + KEY_TILE - 1) / KEY_TILE;
    int size = tiles * d * KEY_TILE;
    float[] vt = reuse != null && reuse.length >= size ? reuse : new float[size];
    float[] vd = v.data();
    for (int j = 0; j < keys; j++) {
      int src = v.index(b, j, h);
      int dst = (j / KEY_TILE) * d * KEY_TILE + j % KEY_TILE;
      for (int c = 0; c < d; c++) {
        vt[dst + c * KEY_TILE] = vd[src + c];
      }
    }
    return vt;
  }

  /** Per-thread tile buffers, grown on demand and reused across calls. */
  private static final class Scratch {
    float[] qt = new float[0];
    float[] scores = new float[KEY_TILE * QUERY_TILE];
    float[] acc = new float[0];
    final float[] max = new float[QUERY_TILE];
    final float[] newMax = new float[QUERY_TILE];
    final float[] shift = new float[QUERY_TILE];
    final float[] alpha = new float[QUERY_TILE];
    final float[] sum = new float[QUERY_TILE];
    final float[] sumEntry = new float[QUERY_TILE];
    float[] values = new float[0];

    void ensure(int d) {
      if (qt.length < d * QUERY_TILE) {
        qt = new float[d * QUERY_TILE];
        acc = new float[d * QUERY_TILE];
      }
    }

    float[] packValues(BlockView v, int b, int h) {
      values = CpuFlashAttention.packValues(v, b, h, values);
      return values;
    }
  }
}
