package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionMask;
import java.util.Optional;

/**
 * The flash and LSE-merge kernels on buffers that already live on the device, enqueued on
 * {@link #stream()} without waiting: for callers that keep data resident across calls (the NCCL
 * ring keeps K/V, the accumulator and the LSE on the GPU for the whole ring). The caller orders
 * its own copies and transfers against the stream and waits for it.
 */
public interface DeviceKernels {

  /** How q, k and v are stored on the device; outputs and LSEs are fp32. */
  GpuDtype dtype();

  /** The visible device ordinal the kernels run on. */
  int device();

  /** The stream the kernels are enqueued on (a {@code CUstream} address). */
  long stream();

  /**
   * Flash forward of {@code q} against {@code k}/{@code v} (stored as {@link #dtype()}) into
   * {@code out} (fp32) and {@code lse} (fp32, contiguous {@code [batch][q.seq][heads]}), with the
   * same mask and scale rules as {@code AttentionKernel.forward}; k and v may hold fewer heads
   * than q (grouped-query attention, a divisor of q's). Enqueued, not awaited.
   */
  void forward(DeviceBlock q, DeviceBlock k, DeviceBlock v, float scale, AttentionMask mask,
      DeviceBlock out, long lse);

  /**
   * {@code lse_merge.cu}: folds {@code rows} contiguous rows of {@code headDim} floats
   * {@code (part, partLse)} into {@code (acc, accLse)} in place. Enqueued, not awaited.
   */
  void merge(long acc, long accLse, long part, long partLse, long rows, int headDim);

  /**
   * {@code convert.cu}: rounds {@code n} contiguous fp32 values at {@code src} to {@link #dtype()}
   * at {@code dst} (to nearest even, as {@link GpuDtype#floatToHalf} / {@link
   * GpuDtype#floatToBf16}), so that fp32 host data is copied up once and converted on the device.
   * Enqueued, not awaited. Only for 16-bit storage: fp32 needs no conversion.
   */
  void convertFromFloat(long src, long dst, long n);

  /** A kernel that can also run on device buffers. */
  interface Source {
    /** The device entry points, or empty when this kernel has none (the CPU kernel). */
    Optional<DeviceKernels> deviceKernels();
  }
}
