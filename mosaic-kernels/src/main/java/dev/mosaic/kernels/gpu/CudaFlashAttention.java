package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Cancellation;
import dev.mosaic.kernels.CancelledException;

/**
 * The CUDA flash kernel behind the {@link AttentionKernel} interface: same inputs, outputs, masks
 * and fully-masked-row rules as {@code CpuFlashAttention}, and the same tiling (64 queries × 64
 * keys, online softmax in base 2; see {@code src/main/cuda/flash_forward.cu}). Inputs are stored
 * on the device as fp32, fp16 or bf16 ({@link GpuDtype}: uploaded as fp32 and rounded there by
 * {@code convert.cu}); accumulation, output and LSE are fp32. Head dims up to
 * 256. Grouped-query attention (K/V with fewer heads, a divisor of q's) runs in the same kernels,
 * each query head reading its K/V head in place ({@code AttentionKernel.kvHead}). fp16/bf16 run
 * on tensor cores ({@code flash_forward_tc.cu}) where {@link KernelSelection} picks them,
 * otherwise on the fp32-FMA kernel; {@link #lastKernel()} says which ran.
 *
 * <p>The kernels come from the fatbin in the jar ({@code sm_80}, {@code sm_90} SASS + PTX) through
 * the driver API ({@code cuModuleLoadData}); when the jar has none, or none for this GPU, NVRTC
 * compiles the shipped source for the device at first use. Device buffers live in a
 * {@link DeviceArena}: the kernel's own (freed by {@link #close()}) or one the caller passes, e.g.
 * a Spark task's. {@link #available()} says, without touching CUDA classes, whether any of this
 * can run here; {@link #open} throws with the reason when it cannot.
 *
 * <p>This class reaches CUDA only through {@link Gpu} and reflection: loading it needs no CUDA jar.
 */
public final class CudaFlashAttention implements AttentionKernel, DeviceKernels.Source {
  private static final float LOG2E = (float) (1.0 / Math.log(2));

  private final FlashBackend backend;
  private final GpuDtype dtype;
  private final DeviceArena ownArena;
  private volatile Cancellation cancellation = Cancellation.NEVER;

  /** Package-private so that tests can drive it with a backend that needs no GPU. */
  CudaFlashAttention(FlashBackend backend, GpuDtype dtype, DeviceArena ownArena) {
    this.backend = backend;
    this.dtype = dtype;
    this.ownArena = ownArena;
  }

  /** True when a GPU is usable in this JVM (cheap after the first call). */
  public static boolean available() {
    return Gpu.available();
  }

  /** Why {@link #available()} is false, naming what is missing; "" when it is true. */
  public static String unavailableReason() {
    return Gpu.unavailableReason();
  }

  /** fp32 inputs on device 0, with its own device memory. */
  public static CudaFlashAttention open() {
    return open(0, GpuDtype.FP32);
  }

  /** On visible device {@code device}, inputs stored as {@code dtype}, own device memory. */
  public static CudaFlashAttention open(int device, GpuDtype dtype) {
    NativeCuda cuda = Gpu.nativeCuda();
    checkDevice(device);
    DeviceArena arena = new DeviceArena(cuda.allocator(device), "CudaFlashAttention(device "
        + device + ")");
    try {
      return new CudaFlashAttention(cuda.openFlash(device, dtype, arena), dtype, arena);
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /**
   * On visible device {@code device}, taking buffers from {@code arena} (which must allocate on the
   * same device, and which the caller closes, e.g. at the end of a Spark task).
   */
  public static CudaFlashAttention open(int device, GpuDtype dtype, DeviceArena arena) {
    NativeCuda cuda = Gpu.nativeCuda();
    checkDevice(device);
    return new CudaFlashAttention(cuda.openFlash(device, dtype, arena), dtype, null);
  }

  private static void checkDevice(int device) {
    int n = Gpu.report().devices().size();
    if (device < 0 || device >= n) {
      throw new IllegalArgumentException("no CUDA device " + device + ": this process sees " + n
          + " (" + Gpu.report().devices() + ")");
    }
  }

  public GpuDtype dtype() {
    return dtype;
  }

  /**
   * The device memory this kernel owns (freed by {@link #close()}), or null when the caller gave an
   * arena. A Spark task also hands it to a task-end hook, so it is freed even if the task dies
   * before closing the kernel; closing twice is harmless.
   */
  public DeviceArena ownDeviceMemory() {
    return ownArena;
  }

  /**
   * Later {@link #forward} calls ask {@code c} before packing and launching, and throw its
   * {@link CancelledException} instead. One call is one launch (the whole block pair in one grid,
   * milliseconds on a GPU), so there is no host loop to stop inside: a killed task stops at its
   * next block.
   */
  @Override
  public void cancelWith(Cancellation c) {
    this.cancellation = c == null ? Cancellation.NEVER : c;
  }

  @Override
  public void forward(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    AttentionKernel.checkShapes(q, k, v, out, lse); // also: k's head count divides q's
    cancellation.check();
    FlashLaunch launch = FlashLaunch.of(dtype, q.batch(), q.seq(), k.seq(), q.heads(),
        k.heads(), q.headDim());
    if (launch.empty()) {
      return;
    }
    backend.forward(launch, q, k, v, scale * LOG2E, mask, out, lse);
  }

  /**
   * Packed sequences in one launch of a varlen kernel: fp32 on the fp32 kernel, fp16/bf16 on the
   * tensor-core kernel where {@link KernelSelection} picks it; otherwise one {@link #forward} per
   * sequence.
   */
  @Override
  public void forwardVarlen(BlockView q, BlockView k, BlockView v,
      dev.mosaic.kernels.VarlenSequences seqs, float scale, AttentionMask mask, BlockView out,
      float[] lse) {
    if (!backend.hasVarlen(dtype, q.headDim())) {
      AttentionKernel.super.forwardVarlen(q, k, v, seqs, scale, mask, out, lse);
      return;
    }
    AttentionKernel.checkShapes(q, k, v, out, lse); // also: k's head count divides q's
    seqs.checkRows(q, k);
    cancellation.check();
    FlashLaunch launch = FlashLaunch.of(dtype, q.batch(), q.seq(), k.seq(), q.heads(),
        k.heads(), q.headDim());
    if (launch.empty()) {
      return;
    }
    backend.forwardVarlen(launch, q, k, v, seqs, scale * LOG2E, mask, out, lse);
  }

  /**
   * {@code LseMerge.merge} on the GPU: folds the partial {@code (part, partLse)} into
   * {@code (acc, accLse)} in place (LSE layout {@code [batch][seq][heads]}).
   */
  public void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {
    if (acc.batch() != part.batch() || acc.seq() != part.seq() || acc.heads() != part.heads()
        || acc.headDim() != part.headDim()) {
      throw new IllegalArgumentException("partials have different shapes");
    }
    long rows = (long) acc.batch() * acc.seq() * acc.heads();
    if (accLse.length < rows || partLse.length < rows) {
      throw new IllegalArgumentException("LSE arrays hold " + accLse.length + " and "
          + partLse.length + " values, need " + rows);
    }
    if (rows > 0) {
      backend.merge(acc, accLse, part, partLse);
    }
  }

  /**
   * GPU time of the last {@link #forward} kernel alone (CUDA events around the launch, no copies
   * or packing), in milliseconds; NaN before the first call.
   */
  public double lastKernelMillis() {
    return backend.lastKernelMillis();
  }

  /** The kernel the last {@link #forward} ran ({@link KernelSelection}): tensor-core or fp32. */
  public String lastKernel() {
    return backend.lastKernel();
  }

  /**
   * The kernels on device buffers (enqueued on this kernel's stream, not awaited), for callers
   * that keep their data on the GPU; same masks, scale and cancellation as {@link #forward}.
   */
  @Override
  public java.util.Optional<DeviceKernels> deviceKernels() {
    if (!backend.hasDeviceEntryPoints()) {
      return java.util.Optional.empty();
    }
    return java.util.Optional.of(new DeviceKernels() {
      @Override
      public GpuDtype dtype() {
        return dtype;
      }

      @Override
      public int device() {
        return backend.device();
      }

      @Override
      public long stream() {
        return backend.stream();
      }

      @Override
      public void forward(DeviceBlock q, DeviceBlock k, DeviceBlock v, float scale,
          AttentionMask mask, DeviceBlock out, long lse) {
        cancellation.check();
        FlashLaunch launch = FlashLaunch.of(dtype, q.batch(), q.seq(), k.seq(), q.heads(),
            k.heads(), q.headDim());
        if (!launch.empty()) {
          backend.forwardDevice(launch, q, k, v, scale * LOG2E, mask, out, lse);
        }
      }

      @Override
      public void convertFromFloat(long src, long dst, long n) {
        if (dtype == GpuDtype.FP32) {
          throw new IllegalArgumentException("convertFromFloat: the storage dtype is fp32, and"
              + " fp32 needs no conversion (copy it instead)");
        }
        if (n > 0) {
          backend.convertDevice(src, dst, n, dtype);
        }
      }

      @Override
      public void merge(long acc, long accLse, long part, long partLse, long rows,
          int headDim) {
        if (rows > 0) {
          backend.mergeDevice(acc, accLse, part, partLse, rows, headDim);
        }
      }
    });
  }

  @Override
  public String name() {
    return "cuda-flash(" + dtype.name().toLowerCase(java.util.Locale.ROOT) + ", "
        + backend.describe() + ")";
  }

  @Override
  public void close() {
    try {
      backend.close();
    } finally {
      if (ownArena != null) {
        ownArena.close();
      }
    }
  }
}
