package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import java.util.List;

/**
 * Launch geometry of the CUDA flash forward kernel for one call, computed without CUDA so that it
 * can be tested anywhere. The kernel mirrors {@code CpuFlashAttention}: a block of
 * {@value #THREADS} threads owns {@value #QUERY_TILE} queries of one (batch, head) — 4 threads per
 * query — and walks key tiles of {@value #KEY_TILE}. Grid: (query tiles, heads, batch).
 * Grouped-query attention: K/V hold {@code kvHeads} heads ({@code kvHeads} divides {@code heads};
 * MHA has {@code kvHeads = heads}) and query head h reads K/V head
 * {@code AttentionKernel.kvHead(h, heads, kvHeads)}.
 *
 * @param headDimBucket the compiled variant: the smallest of 32, 64, 128, 256 that is
 *     {@code >= headDim}
 */
public record FlashLaunch(GpuDtype dtype, int batch, int seqQ, int seqK, int heads, int kvHeads,
    int headDim, int headDimBucket) {
  public static final int QUERY_TILE = 64;
  public static final int KEY_TILE = 64;
  public static final int THREADS = 256;
  public static final int MAX_HEAD_DIM = 256;
  /** CUDA's limit on grid dimensions y and z (heads, batch). */
  static final int MAX_GRID_YZ = 65535;

  /** Multi-head attention: as many K/V heads as query heads. */
  public static FlashLaunch of(GpuDtype dtype, int batch, int seqQ, int seqK, int heads,
      int headDim) {
    return of(dtype, batch, seqQ, seqK, heads, heads, headDim);
  }

  /** Grouped-query attention: {@code kvHeads} K/V heads, a divisor of {@code heads}. */
  public static FlashLaunch of(GpuDtype dtype, int batch, int seqQ, int seqK, int heads,
      int kvHeads, int headDim) {
    if (kvHeads < 1 || heads % kvHeads != 0) {
      throw new IllegalArgumentException("kvHeads must divide heads (" + heads + "), got "
          + kvHeads);
    }
    if (headDim < 1 || headDim > MAX_HEAD_DIM) {
      throw new IllegalArgumentException("the CUDA flash kernel takes head dims 1.." + MAX_HEAD_DIM
          + ", got " + headDim + " (use the CPU kernel)");
    }
    if (heads > MAX_GRID_YZ || batch > MAX_GRID_YZ) {
      throw new IllegalArgumentException("the CUDA flash kernel takes at most " + MAX_GRID_YZ
          + " heads and batch entries per call, got " + heads + " heads, batch " + batch);
    }
    int bucket = 32;
    while (bucket < headDim) {
      bucket *= 2;
    }
    return new FlashLaunch(dtype, batch, seqQ, seqK, heads, kvHeads, headDim, bucket);
  }

  /** The extern "C" kernel name in flash_forward.cu. */
  public String kernelName() {
    return "mosaic_flash_fwd_" + dtype.suffix() + "_d" + headDimBucket;
  }

  public int gridX() {
    return (seqQ + QUERY_TILE - 1) / QUERY_TILE;
  }

  /** Dynamic shared memory: Q tile and K/V tile at row stride headDim+1, and the P tile. */
  public int sharedBytes() {
    return sharedBytes(headDim);
  }

  public static int sharedBytes(int headDim) {
    return (QUERY_TILE * (headDim + 1) + KEY_TILE * (headDim + 1) + QUERY_TILE * (KEY_TILE + 1))
        * Float.BYTES;
  }

  /** Nothing to launch (no queries). Zero keys still launch: every row becomes 0 / -inf. */
  public boolean empty() {
    return batch == 0 || seqQ == 0;
  }

  /**
   * The arguments of {@link #kernelName()} in the order of flash_forward.cu, for inputs packed by
   * {@link HostPacking} (contiguous {@code (batch, seq, heads, headDim)}; K/V rows hold
   * {@code kvHeads} heads).
   *
   * @param qScale {@code scale·log2 e}
   */
  public List<KernelArg> arguments(long q, long k, long v, long out, long lse, float qScale,
      AttentionMask mask) {
    int rs = heads * headDim;
    int kvs = kvHeads * headDim;
    return List.of(
        KernelArg.ptr(q), KernelArg.i64((long) seqQ * rs), KernelArg.i32(rs),
        KernelArg.ptr(k), KernelArg.i64((long) seqK * kvs), KernelArg.i32(kvs),
        KernelArg.ptr(v), KernelArg.i64((long) seqK * kvs), KernelArg.i32(kvs),
        KernelArg.ptr(out), KernelArg.i64((long) seqQ * rs), KernelArg.i32(rs), KernelArg.ptr(lse),
        KernelArg.i32(seqQ), KernelArg.i32(seqK), KernelArg.i32(heads), KernelArg.i32(kvHeads),
        KernelArg.i32(headDim), KernelArg.f32(qScale), KernelArg.i32(mask.causal() ? 1 : 0),
        KernelArg.i64(mask.queryOffset()), KernelArg.i64(mask.keyOffset()),
        KernelArg.i64(mask.keyLimit()));
  }

  /**
   * The varlen kernel of flash_forward.cu (fp32 inputs): this launch's batch, seqQ and seqK are
   * the packed buffers' ({@link dev.mosaic.kernels.VarlenSequences} totals).
   */
  public String varlenKernelName() {
    if (dtype != GpuDtype.FP32) {
      throw new IllegalArgumentException("the varlen CUDA kernel takes fp32 inputs, got " + dtype);
    }
    return "mosaic_flash_fwd_varlen_f32_d" + headDimBucket;
  }

  /** Varlen grid x: the query tiles of the longest sequence (y heads, z batch × sequences). */
  public static int varlenGridX(dev.mosaic.kernels.VarlenSequences seqs) {
    int longest = 0;
    for (int s = 0; s < seqs.count(); s++) {
      longest = Math.max(longest, seqs.queries(s));
    }
    return (longest + QUERY_TILE - 1) / QUERY_TILE;
  }

  /** Varlen grid z: one block column per (batch entry, sequence). */
  public int varlenGridZ(dev.mosaic.kernels.VarlenSequences seqs) {
    long z = (long) batch * seqs.count();
    if (z > MAX_GRID_YZ) {
      throw new IllegalArgumentException("the varlen CUDA kernel takes at most " + MAX_GRID_YZ
          + " (batch × sequences) per call, got " + z);
    }
    return (int) z;
  }

  /**
   * The arguments of {@link #varlenKernelName()}: packed inputs as {@link #arguments}, then the
   * int32 device arrays {@code cuQ}, {@code cuK} and {@code validKeys} (any pointer when the
   * sequences have no key padding).
   */
  public List<KernelArg> varlenArguments(long q, long k, long v, long out, long lse, long cuQ,
      long cuK, long validKeys, dev.mosaic.kernels.VarlenSequences seqs, float qScale,
      AttentionMask mask) {
    int rs = heads * headDim;
    int kvs = kvHeads * headDim;
    return List.of(
        KernelArg.ptr(q), KernelArg.i64((long) seqQ * rs), KernelArg.i32(rs),
        KernelArg.ptr(k), KernelArg.i64((long) seqK * kvs), KernelArg.i32(kvs),
        KernelArg.ptr(v), KernelArg.i64((long) seqK * kvs), KernelArg.i32(kvs),
        KernelArg.ptr(out), KernelArg.i64((long) seqQ * rs), KernelArg.i32(rs), KernelArg.ptr(lse),
        KernelArg.ptr(cuQ), KernelArg.ptr(cuK), KernelArg.ptr(validKeys),
        KernelArg.i32(seqs.validKeys() == null ? 0 : 1), KernelArg.i32(seqs.count()),
        KernelArg.i32(seqQ), KernelArg.i32(heads), KernelArg.i32(kvHeads), KernelArg.i32(headDim),
        KernelArg.f32(qScale),
        KernelArg.i32(mask.causal() ? 1 : 0), KernelArg.i64(mask.queryOffset()),
        KernelArg.i64(mask.keyOffset()), KernelArg.i64(mask.keyLimit()));
  }

  /** Name of the merge kernel in lse_merge.cu. */
  public static final String MERGE_KERNEL = "mosaic_lse_merge";

  /** The arguments of {@value #MERGE_KERNEL}, in the order of lse_merge.cu. */
  public static List<KernelArg> mergeArguments(long acc, long accLse, long part, long partLse,
      long rows, int headDim) {
    return List.of(KernelArg.ptr(acc), KernelArg.ptr(accLse), KernelArg.ptr(part),
        KernelArg.ptr(partLse), KernelArg.i64(rows), KernelArg.i32(headDim));
  }

  /** Threads per block of the LSE merge kernel (8 warps, one row each). */
  public static final int MERGE_THREADS = 256;
  public static final int MERGE_ROWS_PER_BLOCK = 8;

  public static long mergeBlocks(long rows) {
    return (rows + MERGE_ROWS_PER_BLOCK - 1) / MERGE_ROWS_PER_BLOCK;
  }
}
