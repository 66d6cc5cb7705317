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
 * <p>Query tiles walk the keys in groups ({@link #queryTiles}): each key tile is used by up to
 * four query tiles while it is in cache. Parallelism: over (batch, head) pairs when there are
 * enough of them, otherwise over groups of query tiles of one head at a time. Thread count is
 * fixed per instance. A {@link Cancellation} given to {@link #cancelWith} is asked before every
 * key tile in every worker; when it says stop, all
 * workers stop and {@code forward} throws {@link CancelledException} (the output is then partly
 * written, and the kernel is ready for the next call).
 */
public final class CpuFlashAttention implements AttentionKernel {
  static final int QUERY_TILE = 64;
  static final int KEY_TILE = 64;
  /**
   * Query tiles that walk the keys together ({@link #queryTiles}) unless given:
   * {@code -Dmosaic.kernel.queryTileGroup=N} (1–16), for measuring.
   */
  static final int DEFAULT_GROUP =
      group(System.getProperty("mosaic.kernel.queryTileGroup"));
  private static final float LOG2E = (float) (1.0 / Math.log(2));
  static final float LN2 = (float) Math.log(2);
  /** How far (base 2) a score may pass a query's reference max before it moves: P <= 2^8. */
  private static final float RESCALE_SLACK = 8f;

  private final FlashOps ops;
  private final int threads;
  private final int group;
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
    this(threads, ops, DEFAULT_GROUP);
  }

  /** {@code group}: query tiles that walk the keys together (the output does not depend on it). */
  CpuFlashAttention(int threads, FlashOps ops, int group) {
    if (group < 1) {
      throw new IllegalArgumentException("query tile group must be >= 1, got " + group);
    }
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    if (QUERY_TILE % ops.lanes() != 0) {
      throw new IllegalArgumentException("vector width " + ops.lanes() + " does not divide the"
          + " query tile " + QUERY_TILE);
    }
    this.threads = threads;
    this.group = group;
    this.ops = ops;
    this.parallel = new Parallel(threads, "mosaic-kernel");
  }

  /** Parses the group size property: 1..16, 4 when unset. */
  static int group(String property) {
    if (property == null || property.isBlank()) {
      return 4;
    }
    try {
      int g = Integer.parseInt(property.trim());
      if (g >= 1 && g <= 16) {
        return g;
      }
    } catch (NumberFormatException e) {
      // the message below
    }
    throw new IllegalArgumentException("mosaic.kernel.queryTileGroup must be an integer from 1 to"
        + " 16, got '" + property + "'");
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
        for (int t = 0; t < queryTiles; t += group) {
          queryTiles(q, k, vt, qScale, mask, out, lse, b, h, t, Math.min(t + group, queryTiles),
              stop, 0);
        }
      });
    } else {
      // Few heads: threads share a head's query tiles, in groups small enough that every
      // thread gets several (a causal mask makes later tiles dearer).
      int size = Math.max(1, Math.min(group, queryTiles / (8 * threads)));
      int groups = (queryTiles + size - 1) / size;
      for (int p = 0; p < pairs; p++) {
        int b = p / q.heads();
        int h = p % q.heads();
        float[] vt = packValues(v, b, kvHead(h, q, k), null);
        parallel.forEach(groups, g -> queryTiles(q, k, vt, qScale, mask, out, lse, b, h,
            g * size, Math.min((g + 1) * size, queryTiles), stop, 0));
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
      for (int t = w.tileFrom(); t < w.tileTo(); t += group) {
        queryTiles(qs, ks, vt, qScale, ms, os, lse, 0, h, t, Math.min(t + group, w.tileTo()),
            stop, lseBase);
      }
    });
  }

  /**
   * Query tiles {@code [tileFrom, tileTo)} of one (batch, head) against all their visible keys:
   * each key tile is taken by every tile of the group in turn while it is still in cache, so K
   * and V stream from memory once per group, not once per tile (at n = 16,384 a head's K and V
   * no longer fit in the cache, and one pass per 64 queries ran at 0.6× the speed of n = 4,096).
   * Each tile sees the same key tiles in the same order as alone, so the bits do not depend on the
   * grouping. {@code stop} is asked before each key tile of each query tile. A tile's lse values go to
   * {@code lseBase} plus their index in {@code q} (a varlen sequence's rows).
   */
  private void queryTiles(BlockView q, BlockView k, float[] vt, float qScale, AttentionMask mask,
      BlockView out, float[] lse, int b, int h, int tileFrom, int tileTo, Cancellation stop,
      int lseBase) {
    int d = q.headDim();
    int kh = kvHead(h, q, k);
    Scratch s = scratch.get();
    int count = tileTo - tileFrom;
    QueryTileState[] tiles = s.tiles(count, d);
    int keyEnd = 0;
    for (int g = 0; g < count; g++) {
      int q0 = (tileFrom + g) * QUERY_TILE;
      int rows = Math.min(QUERY_TILE, q.seq() - q0);
      tiles[g].start(q, b, h, q0, rows, roundUp(rows, ops.lanes()), qScale,
          mask.visibleKeyEnd(q0, q0 + rows, k.seq()));
      keyEnd = Math.max(keyEnd, tiles[g].keyEnd);
    }
    for (int j0 = 0; j0 < keyEnd; j0 += KEY_TILE) {
      for (int g = 0; g < count; g++) {
        if (j0 < tiles[g].keyEnd) {
          stop.check(); // one interface call per 64×64×headDim×2 FMAs: nothing next to them
          keyTile(k, b, kh, vt, mask, d, j0, tiles[g], s);
        }
      }
    }
    for (int g = 0; g < count; g++) {
      tiles[g].finish(out, lse, b, h, lseBase);
    }
  }

  /** One key tile into one query tile's running max, sum and output (the online softmax). */
  private void keyTile(BlockView k, int b, int kh, float[] vt, AttentionMask mask, int d, int j0,
      QueryTileState t, Scratch s) {
    int width = t.width;
    float[] st = s.scores;
    float[] mNew = s.newMax;
    float[] shift = t.shift;
    float[] alpha = s.alpha;
    float[] m = t.max;
    float[] l = t.sum;
    int valid = Math.min(KEY_TILE, t.keyEnd - j0);
    boolean partial = !mask.fullyVisible(t.q0, t.q0 + t.rows, j0, j0 + valid);
    scoreTile(k, b, kh, j0, valid, d, t.qt, st, width, t.rows, mask, t.q0, partial);
    // After the first key tile a query's reference max rarely moves (lazy rescaling, below),
    // so take the column maxima in the same pass as the exponentials, with the reference as
    // it stands; the rare tile where a max passes it by more than the slack is undone and
    // redone in two passes. Either way the bits are those of the two-pass path.
    boolean done = false;
    if (j0 > 0) {
      System.arraycopy(m, 0, mNew, 0, width);
      System.arraycopy(l, 0, t.sumEntry, 0, width);
      done = !ops.exp2ColumnsTrackingMax(st, 0, width, valid, width, shift, l, mNew,
          RESCALE_SLACK);
      if (!done) {
        System.arraycopy(t.sumEntry, 0, l, 0, width);
        scoreTile(k, b, kh, j0, valid, d, t.qt, st, width, t.rows, mask, t.q0, partial);
      }
    }
    if (!done) {
      System.arraycopy(m, 0, mNew, 0, width);
      ops.colMax(st, 0, width, valid, width, mNew);
      boolean moved = rescale(m, mNew, shift, alpha, l, width);
      ops.exp2Columns(st, 0, width, valid, width, shift, l);
      if (moved) {
        ops.scaleColumns(t.acc, 0, width, d, width, alpha);
      }
    }
    // Oᵀ (headDim × width) += Vᵀ_tile · Pᵀ
    ops.gemm(vt, j0 * d, KEY_TILE, d, valid, st, 0, width, t.acc, 0, width, width, true);
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
    final float[] scores = new float[KEY_TILE * QUERY_TILE];
    final float[] newMax = new float[QUERY_TILE];
    final float[] alpha = new float[QUERY_TILE];
    private QueryTileState[] tiles = new QueryTileState[0];
    float[] values = new float[0];

    /** At least {@code count} tile states sized for head dim {@code d}, reused call after call. */
    QueryTileState[] tiles(int count, int d) {
      if (tiles.length < count) {
        QueryTileState[] grown = Arrays.copyOf(tiles, count);
        for (int i = tiles.length; i < count; i++) {
          grown[i] = new QueryTileState(QUERY_TILE);
        }
        tiles = grown;
      }
      for (int i = 0; i < count; i++) {
        tiles[i].ensure(d);
      }
      return tiles;
    }

    float[] packValues(BlockView v, int b, int h) {
      values = CpuFlashAttention.packValues(v, b, h, values);
      return values;
    }
  }
}
