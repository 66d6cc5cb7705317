package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import java.util.ArrayList;
import java.util.List;

/**
 * Launch geometry of the tensor-core forward kernel ({@code flash_forward_tc.cu}) for fp16/bf16
 * inputs: a block of {@value #THREADS} threads (4 warps, 16 query rows each) owns
 * {@value #QUERY_TILE} queries of one (batch, head) and walks key tiles of {@value #KEY_TILE}.
 * Grid: (query tiles, heads, batch). Same argument list as {@link FlashLaunch} plus
 * {@code outHalf}.
 *
 * @param headDimBucket the compiled variant: the smallest of 32, 64, 128, 256 that is
 *     {@code >= headDim}
 * @param halfOutput the output is written in the input's 16-bit type instead of fp32
 */
public record TensorCoreLaunch(GpuDtype dtype, int batch, int seqQ, int seqK, int heads,
    int kvHeads, int headDim, int headDimBucket, boolean halfOutput) {
  public static final int QUERY_TILE = 64;
  public static final int KEY_TILE = 64;
  public static final int THREADS = 128;
  /** cp.async and bf16 WMMA need sm_80; the fatbin carries sm_80 and sm_90. */
  public static final int MIN_COMPUTE_CAPABILITY = 80;

  /** Multi-head attention: as many K/V heads as query heads. */
  public static TensorCoreLaunch of(GpuDtype dtype, int batch, int seqQ, int seqK, int heads,
      int headDim, boolean halfOutput) {
    return of(dtype, batch, seqQ, seqK, heads, heads, headDim, halfOutput);
  }

  /** Grouped-query attention: {@code kvHeads} K/V heads, a divisor of {@code heads}. */
  public static TensorCoreLaunch of(GpuDtype dtype, int batch, int seqQ, int seqK, int heads,
      int kvHeads, int headDim, boolean halfOutput) {
    if (dtype == GpuDtype.FP32) {
      throw new IllegalArgumentException("the tensor-core kernel takes dtype fp16 or bf16, got "
          + dtype + " (use FlashLaunch for fp32)");
    }
    FlashLaunch geometry = FlashLaunch.of(dtype, batch, seqQ, seqK, heads, kvHeads, headDim);
    return new TensorCoreLaunch(dtype, batch, seqQ, seqK, heads, kvHeads, headDim,
        geometry.headDimBucket(), halfOutput);
  }

  /** The same call on tensor cores, fp32 output. */
  public static TensorCoreLaunch of(FlashLaunch launch) {
    return of(launch.dtype(), launch.batch(), launch.seqQ(), launch.seqK(), launch.heads(),
        launch.kvHeads(), launch.headDim(), false);
  }

  /** The extern "C" kernel name in flash_forward_tc.cu. */
  public String kernelName() {
    return "mosaic_flash_tc_" + dtype.suffix() + "_d" + headDimBucket;
  }

  public int gridX() {
    return (seqQ + QUERY_TILE - 1) / QUERY_TILE;
  }

  public int sharedBytes() {
    return sharedBytes(headDimBucket);
  }

  /**
   * Dynamic shared memory of the variant for {@code bucket}: Q, K and V tiles in 16 bits at row
   * stride bucket+8, S in fp32 (stride 68), P in 16 bits (stride 72), O in fp32 (stride
   * bucket+4): {@code 640·bucket + 30720} bytes.
   */
  public static int sharedBytes(int bucket) {
    return 3 * QUERY_TILE * (bucket + 8) * 2 + QUERY_TILE * (KEY_TILE + 4) * 4
        + QUERY_TILE * (KEY_TILE + 8) * 2 + QUERY_TILE * (bucket + 4) * 4;
  }

  /** Bytes per output element. */
  public int outputBytes() {
    return halfOutput ? dtype.bytes() : Float.BYTES;
  }

  public boolean empty() {
    return batch == 0 || seqQ == 0;
  }

  /** The varlen kernel's extern "C" name in flash_forward_tc.cu (packed sequences). */
  public String varlenKernelName() {
    return "mosaic_flash_tc_varlen_" + dtype.suffix() + "_d" + headDimBucket;
  }

  /**
   * The varlen kernel's arguments: those of {@link FlashLaunch#varlenArguments} (this launch's
   * seqQ and seqK are the packed totals), then {@code outHalf}. Grid as the fp32 varlen kernel:
   * ({@link FlashLaunch#varlenGridX}, heads, {@link FlashLaunch#varlenGridZ}).
   */
  public List<KernelArg> varlenArguments(long q, long k, long v, long out, long lse, long cuQ,
      long cuK, long validKeys, dev.mosaic.kernels.VarlenSequences seqs, float qScale,
      AttentionMask mask) {
    List<KernelArg> args = new ArrayList<>(geometry().varlenArguments(q, k, v, out, lse, cuQ, cuK,
        validKeys, seqs, qScale, mask));
    args.add(KernelArg.i32(halfOutput ? 1 : 0));
    return List.copyOf(args);
  }

  /** Grid z of the varlen kernel: one block column per (batch entry, sequence). */
  public int varlenGridZ(dev.mosaic.kernels.VarlenSequences seqs) {
    return geometry().varlenGridZ(seqs);
  }

  /** The same call's fp32-kernel geometry, whose argument lists this kernel extends. */
  private FlashLaunch geometry() {
    return FlashLaunch.of(dtype, batch, seqQ, seqK, heads, kvHeads, headDim);
  }

  /** The arguments in the order of flash_forward_tc.cu (packed contiguous inputs). */
  public List<KernelArg> arguments(long q, long k, long v, long out, long lse, float qScale,
      AttentionMask mask) {
    List<KernelArg> args = new ArrayList<>(geometry().arguments(q, k, v, out, lse, qScale,
        mask));
    args.add(KernelArg.i32(halfOutput ? 1 : 0));
    return List.copyOf(args);
  }
}
