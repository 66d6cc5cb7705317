package dev.mosaic.kernels;

import dev.mosaic.kernels.simd.FlashOps;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.util.Arrays;

/**
 * Flash-style attention on the CPU: for each (batch, head) and each tile of
 * {@value #QUERY_TILE} queries it walks the visible key tiles of {@value #KEY_TILE} keys, keeping a
 * running max and sum per query (online softmax) and an un-normalised output accumulator. Memory
 * is O(tile²) per thread plus one packed copy of a head's K (transposed, so the score GEMM
 * broadcasts Q and streams K rows) — never a (seqQ × seqK) matrix.
 *
 * <p>Scores are kept in base 2 ({@code scale·log2 e} is folded into Q) so the exponential is a
 * cheap {@code 2^x}. The dense loops live in {@link FlashOps}, SIMD or scalar.
 *
 * <p>Parallelism: over (batch, head) pairs when there are enough of them, otherwise over query
 * tiles of one head at a time. Thread count is fixed per instance.
 */
public final class CpuFlashAttention implements AttentionKernel {
  static final int QUERY_TILE = 64;
  static final int KEY_TILE = 64;
  private static final float LOG2E = (float) (1.0 / Math.log(2));
  private static final float LN2 = (float) Math.log(2);

  private final FlashOps ops;
  private final int threads;
  private final Parallel parallel;
  private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

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
    if (threads == 1 || pairs >= 2 * threads || queryTiles == 1) {
      parallel.forEach(pairs, p -> {
        HeadPack pack = scratch.get().pack(k, v, p / q.heads(), p % q.heads(), ops.lanes());
        for (int t = 0; t < queryTiles; t++) {
          queryTile(q, pack, qScale, mask, out, lse, p, t);
        }
      });
    } else {
      for (int p = 0; p < pairs; p++) {
        HeadPack pack = new HeadPack().fill(k, v, p / q.heads(), p % q.heads(), ops.lanes());
        int pair = p;
        parallel.forEach(queryTiles, t -> queryTile(q, pack, qScale, mask, out, lse, pair, t));
      }
    }
  }

  /** One tile of queries of one (batch, head) against all visible keys. */
  private void queryTile(BlockView q, HeadPack pack, float qScale, AttentionMask mask,
      BlockView out, float[] lse, int pair, int tile) {
    int heads = q.heads();
    int b = pair / heads;
    int h = pair % heads;
    int d = q.headDim();
    int dPad = pack.dPad;
    int q0 = tile * QUERY_TILE;
    int rows = Math.min(QUERY_TILE, q.seq() - q0);
    Scratch s = scratch.get();
    s.ensure(dPad);
    float[] qs = s.q;
    float[] sc = s.scores;
    float[] acc = s.acc;
    float[] m = s.max;
    float[] l = s.sum;
    int[] end = s.end;

    float[] qd = q.data();
    for (int r = 0; r < rows; r++) {
      int src = q.index(b, q0 + r, h);
      for (int c = 0; c < d; c++) {
        qs[r * d + c] = qd[src + c] * qScale;
      }
      end[r] = mask.visibleKeyEnd(q0 + r, q0 + r + 1, pack.keys);
    }
    Arrays.fill(m, 0, rows, Float.NEGATIVE_INFINITY);
    Arrays.fill(l, 0, rows, 0f);
    Arrays.fill(acc, 0, rows * dPad, 0f);

    int keyEnd = mask.visibleKeyEnd(q0, q0 + rows, pack.keys);
    for (int j0 = 0; j0 < keyEnd; j0 += KEY_TILE) {
      int valid = Math.min(KEY_TILE, pack.keys - j0);
      int width = roundUp(valid, ops.lanes());
      ops.gemm(qs, 0, d, rows, d, pack.kt, j0 * d, KEY_TILE, sc, 0, KEY_TILE, width, false);
      for (int r = 0; r < rows; r++) {
        int row = r * KEY_TILE;
        int cnt = Math.max(0, Math.min(valid, end[r] - j0));
        if (cnt > 0) {
          // Work on whole vectors: pad the row with -inf (2^-inf = 0) rather than take a scalar
          // tail, so the SIMD loops see one shape whatever the block sizes.
          int span = roundUp(cnt, ops.lanes());
          Arrays.fill(sc, row + cnt, row + span, Float.NEGATIVE_INFINITY);
          float mNew = Math.max(m[r], ops.max(sc, row, span));
          float rowSum = ops.exp2Shifted(sc, row, span, mNew);
          if (m[r] != mNew) {
            float alpha = m[r] == Float.NEGATIVE_INFINITY ? 0f : (float) Math.exp((m[r] - mNew) * LN2);
            ops.scale(acc, r * dPad, dPad, alpha);
            l[r] *= alpha;
          }
          l[r] += rowSum;
          m[r] = mNew;
        }
        if (cnt < valid) {
          Arrays.fill(sc, row + cnt, row + valid, 0f);
        }
      }
      pack.accumulate(ops, sc, KEY_TILE, rows, j0, valid, acc, dPad);
    }

    float[] od = out.data();
    for (int r = 0; r < rows; r++) {
      int dst = out.index(b, q0 + r, h);
      int li = (b * q.seq() + q0 + r) * heads + h;
      if (l[r] == 0f) {
        Arrays.fill(od, dst, dst + d, 0f);
        lse[li] = Float.NEGATIVE_INFINITY;
      } else {
        float inv = 1f / l[r];
        for (int c = 0; c < d; c++) {
          od[dst + c] = acc[r * dPad + c] * inv;
        }
        lse[li] = (m[r] + (float) (Math.log(l[r]) / Math.log(2))) * LN2;
      }
    }
  }

  static int roundUp(int x, int m) {
    return (x + m - 1) / m * m;
  }

  /** Per-thread tile buffers, grown on demand and reused across calls. */
  private static final class Scratch {
    float[] q = new float[0];
    float[] scores = new float[QUERY_TILE * KEY_TILE];
    float[] acc = new float[0];
    final float[] max = new float[QUERY_TILE];
    final float[] sum = new float[QUERY_TILE];
    final int[] end = new int[QUERY_TILE];
    private final HeadPack pack = new HeadPack();

    void ensure(int dPad) {
      if (q.length < QUERY_TILE * dPad) {
        q = new float[QUERY_TILE * dPad];
        acc = new float[QUERY_TILE * dPad];
      }
    }

    HeadPack pack(BlockView k, BlockView v, int b, int h, int lanes) {
      return pack.fill(k, v, b, h, lanes);
    }
  }

  /**
   * One head's keys transposed tile by tile: tile t holds {@code (headDim, KEY_TILE)} at
   * {@code t·headDim·KEY_TILE}, so one key tile is one contiguous block (few pages, streaming
   * loads). Where the head dim is not a multiple of the vector width the values are padded to
   * {@code (keys, dPad)}; otherwise they are read in place.
   */
  private static final class HeadPack {
    float[] kt = new float[0];
    float[] vp = new float[0];
    int keys;
    int dPad;
    BlockView v;
    int vb;
    int vh;
    boolean packedV;

    HeadPack fill(BlockView k, BlockView v, int b, int h, int lanes) {
      int d = k.headDim();
      keys = k.seq();
      dPad = roundUp(d, lanes);
      int tiles = (keys + KEY_TILE - 1) / KEY_TILE;
      int size = tiles * d * KEY_TILE;
      if (kt.length < size) {
        kt = new float[size];
      }
      float[] kd = k.data();
      for (int j = 0; j < keys; j++) {
        int src = k.index(b, j, h);
        int dst = (j / KEY_TILE) * d * KEY_TILE + j % KEY_TILE;
        for (int c = 0; c < d; c++) {
          kt[dst + c * KEY_TILE] = kd[src + c];
        }
      }
      int tail = keys % KEY_TILE;
      if (tail != 0) {
        int base = (tiles - 1) * d * KEY_TILE;
        for (int c = 0; c < d; c++) {
          Arrays.fill(kt, base + c * KEY_TILE + tail, base + (c + 1) * KEY_TILE, 0f);
        }
      }
      this.v = v;
      this.vb = b;
      this.vh = h;
      packedV = dPad != d;
      if (packedV) {
        if (vp.length < keys * dPad) {
          vp = new float[keys * dPad];
        }
        float[] vd = v.data();
        for (int j = 0; j < keys; j++) {
          System.arraycopy(vd, v.index(b, j, h), vp, j * dPad, d);
          Arrays.fill(vp, j * dPad + d, (j + 1) * dPad, 0f);
        }
      }
      return this;
    }

    /** acc[rows × dPad] += P[rows × keys j0..j0+valid) · V[j0.., :]. */
    void accumulate(FlashOps ops, float[] p, int pStride, int rows, int j0, int valid,
        float[] acc, int accStride) {
      if (packedV) {
        ops.gemm(p, 0, pStride, rows, valid, vp, j0 * dPad, dPad, acc, 0, accStride, dPad, true);
      } else {
        ops.gemm(p, 0, pStride, rows, valid, v.data(), v.index(vb, j0, vh), v.rowStride(), acc, 0,
            accStride, dPad, true);
      }
    }
  }
}
