package dev.mosaic.kernels.gpu;

import java.util.List;

/**
 * Launch of {@code convert.cu}: {@code n} contiguous fp32 values rounded to fp16 or bf16 on the
 * device (to nearest even, bit for bit {@link GpuDtype#floatToHalf} / {@link
 * GpuDtype#floatToBf16}). The backends copy fp32 host tensors up once and convert them there, so
 * the host never rounds element by element per call. Blocks of {@value #THREADS} threads walk the
 * buffer with a grid-stride loop, so any grid size is correct.
 */
public final class ConvertLaunch {
  public static final int THREADS = 256;
  /** More blocks than any GPU runs at once; the grid-stride loop covers longer buffers. */
  public static final int MAX_BLOCKS = 4096;

  private ConvertLaunch() {}

  /** The extern "C" kernel that rounds fp32 to {@code to} (fp16 or bf16). */
  public static String kernelName(GpuDtype to) {
    if (to == GpuDtype.FP32) {
      throw new IllegalArgumentException("convert.cu rounds fp32 to fp16 or bf16, got target "
          + to + " (fp32 needs no conversion)");
    }
    return "mosaic_convert_f32_to_" + to.suffix();
  }

  /** Grid size for {@code n} elements: one element per thread up to {@value #MAX_BLOCKS}. */
  public static int blocks(long n) {
    if (n < 0) {
      throw new IllegalArgumentException("element count must be >= 0, got " + n);
    }
    return (int) Math.max(1, Math.min(MAX_BLOCKS, (n + THREADS - 1) / THREADS));
  }

  /** The arguments in the order of convert.cu: source (fp32), destination (16-bit), count. */
  public static List<KernelArg> arguments(long src, long dst, long n) {
    return List.of(KernelArg.ptr(src), KernelArg.ptr(dst), KernelArg.i64(n));
  }
}
