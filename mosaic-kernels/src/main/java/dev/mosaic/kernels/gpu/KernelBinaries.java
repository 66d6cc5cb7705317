package dev.mosaic.kernels.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;

/**
 * The CUDA kernels as the jar carries them, no CUDA needed to read them: per module a fatbin
 * ({@code dev/mosaic/kernels/gpu/<module>.fatbin}, present when the build found nvcc), always its
 * source ({@code dev/mosaic/kernels/gpu/cuda/<module>.cu}, for NVRTC), and the build's ptxas report
 * ({@code dev/mosaic/kernels/gpu/ptxas-report.txt}: registers, stack and spill bytes, shared
 * memory, occupancy and tensor-core instructions per kernel and architecture).
 */
public final class KernelBinaries {
  /** The flash forward kernels ({@code mosaic_flash_fwd_<dtype>_d<DMAX>}). */
  public static final String FLASH_FORWARD = "flash_forward";
  /** The tensor-core forward kernels for fp16/bf16 ({@code mosaic_flash_tc_<dtype>_d<DMAX>}). */
  public static final String FLASH_FORWARD_TC = "flash_forward_tc";
  /** The LSE merge kernel ({@code mosaic_lse_merge}). */
  public static final String LSE_MERGE = "lse_merge";
  /** fp32 to fp16/bf16 on the device ({@code mosaic_convert_f32_to_<dtype>}). */
  public static final String CONVERT = "convert";
  public static final List<String> MODULES = List.of(FLASH_FORWARD, FLASH_FORWARD_TC, LSE_MERGE,
      CONVERT);

  static final String DIR = "/dev/mosaic/kernels/gpu/";
  public static final String PTXAS_REPORT = DIR + "ptxas-report.txt";

  private KernelBinaries() {}

  public static String fatbinResource(String module) {
    return DIR + checkModule(module) + ".fatbin";
  }

  public static String sourceResource(String module) {
    return DIR + "cuda/" + checkModule(module) + ".cu";
  }

  /** The module's fatbin, or empty when the jar was built without nvcc. */
  public static Optional<byte[]> fatbin(String module) {
    return read(fatbinResource(module));
  }

  /** The module's CUDA source (always in the jar). */
  public static String source(String module) {
    return read(sourceResource(module))
        .map(b -> new String(b, StandardCharsets.UTF_8))
        .orElseThrow(() -> new IllegalStateException("CUDA source " + sourceResource(module)
            + " is missing from the class path: the mosaic-kernels jar is incomplete"));
  }

  /** The ptxas report of the build, or empty when it ran without nvcc. */
  public static Optional<String> ptxasReport() {
    return read(PTXAS_REPORT).map(b -> new String(b, StandardCharsets.UTF_8));
  }

  /** One line per module for {@code mosaic doctor}: what the jar holds for it. */
  public static String describe(String module) {
    Optional<byte[]> fb = fatbin(module);
    String src = read(sourceResource(module)).isPresent() ? "source for NVRTC" : "NO SOURCE";
    if (fb.isEmpty()) {
      return module + ": no fatbin (built without nvcc), " + src;
    }
    try {
      return module + ".fatbin " + fb.get().length + " bytes: "
          + FatbinInfo.parse(fb.get()).describe() + "; " + src;
    } catch (IllegalArgumentException e) {
      return module + ".fatbin unreadable (" + e.getMessage() + "); " + src;
    }
  }

  private static String checkModule(String module) {
    if (!MODULES.contains(module)) {
      throw new IllegalArgumentException("unknown CUDA module '" + module + "'; expected one of "
          + MODULES);
    }
    return module;
  }

  private static Optional<byte[]> read(String resource) {
    try (InputStream in = KernelBinaries.class.getResourceAsStream(resource)) {
      return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + resource, e);
    }
  }
}
