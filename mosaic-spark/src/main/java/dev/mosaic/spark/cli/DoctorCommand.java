package dev.mosaic.spark.cli;

import dev.mosaic.kernels.gpu.FatbinInfo;
import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.kernels.gpu.KernelBinaries;
import dev.mosaic.kernels.simd.VectorizationProvider;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code mosaic doctor}: what this machine offers Mosaic — Java and the CPU kernel's SIMD choice,
 * Spark, whether the CUDA bindings, driver, NVRTC and NCCL load, the GPUs the driver sees, the
 * kernels the jar carries (fatbin architectures, ptxas report) — and what is missing for the GPU
 * path. Diagnostic only: exits 0 whatever it finds (2 for unknown flags).
 */
public final class DoctorCommand {
  public static final String USAGE = String.join("\n",
      "usage: mosaic doctor",
      "  Reports Java, SIMD, Spark, CUDA/NVRTC/NCCL, GPUs and the CUDA kernels in the jar, and",
      "  what is missing for GPU use. Exit code 0 (also without a GPU).");

  private DoctorCommand() {}

  public static int run(String[] args, PrintStream out) {
    Flags.parse("doctor", args, Set.of(), Set.of());
    out.println("mosaic doctor");
    Runtime rt = Runtime.getRuntime();
    line(out, "java", System.getProperty("java.version") + " ("
        + System.getProperty("java.vendor") + ", " + System.getProperty("java.home") + "), "
        + rt.availableProcessors() + " processors, max heap " + (rt.maxMemory() >> 20) + " MiB");
    VectorizationProvider.Choice simd = VectorizationProvider.choice();
    line(out, "cpu kernel", simd.ops().name() + ": " + simd.reason());
    line(out, "spark", sparkVersion());

    Gpu.Report gpu = Gpu.report();
    line(out, "cuda jars", status(gpu.bindings()));
    line(out, "cuda", status(gpu.cuda()));
    line(out, "nvrtc", status(gpu.nvrtc()));
    line(out, "nccl", status(gpu.nccl()));
    if (gpu.devices().isEmpty()) {
      line(out, "gpus", "none");
    }
    for (Gpu.Device d : gpu.devices()) {
      line(out, "gpu", d.toString());
    }
    Map<String, String> env = System.getenv();
    line(out, "env", "CUDA_VISIBLE_DEVICES=" + env.getOrDefault("CUDA_VISIBLE_DEVICES", "<unset>")
        + ", CUDA_DEVICE_ORDER=" + env.getOrDefault("CUDA_DEVICE_ORDER", "<unset>"));

    for (String module : KernelBinaries.MODULES) {
      line(out, "kernels", KernelBinaries.describe(module));
    }
    line(out, "ptxas", ptxasSummary());
    for (Gpu.Device d : gpu.devices()) {
      Optional<byte[]> fb = KernelBinaries.fatbin(KernelBinaries.FLASH_FORWARD);
      boolean runs = fb.isPresent() && FatbinInfo.parse(fb.get()).runsOn(d.computeCapability());
      line(out, "gpu " + d.ordinal(), runs ? "the jar's fatbin runs on sm_" + d.computeCapability()
          : "no fatbin code for sm_" + d.computeCapability() + ": NVRTC compiles the sources"
              + (gpu.nvrtc().ok() ? "" : " (but NVRTC is missing)"));
    }

    List<String> missing = gpu.missing();
    if (gpu.usable() && missing.isEmpty()) {
      out.println("GPU path: ready (" + gpu.devices().size() + " GPU(s)); run 'mosaic selftest'"
          + " to compare the GPU kernels with the CPU ones.");
    } else {
      out.println(gpu.usable() ? "GPU path: kernels ready; missing for the rest:"
          : "GPU path: not available here; missing:");
      for (String m : missing) {
        out.println("  - " + m);
      }
      out.println("The CPU path needs none of this. See docs/gpu.md.");
    }
    return 0;
  }

  private static void line(PrintStream out, String key, String value) {
    out.printf(Locale.ROOT, "  %-11s %s%n", key, value);
  }

  private static String status(Gpu.Status s) {
    return (s.ok() ? "ok: " : "NO: ") + s.detail();
  }

  /** Spark's version without starting Spark (the package object's SPARK_VERSION). */
  static String sparkVersion() {
    try {
      Class<?> pkg = Class.forName("org.apache.spark.package$");
      Object module = pkg.getField("MODULE$").get(null);
      String spark = (String) pkg.getMethod("SPARK_VERSION").invoke(module);
      String scala;
      try {
        Class<?> props = Class.forName("scala.util.Properties$");
        scala = (String) props.getMethod("versionNumberString")
            .invoke(props.getField("MODULE$").get(null));
      } catch (ReflectiveOperationException e) {
        scala = "?";
      }
      return spark + " (Scala " + scala + ")";
    } catch (ReflectiveOperationException | LinkageError e) {
      return "not on the class path (" + e + ")";
    }
  }

  /** One line from the build's ptxas report: kernel count, register range, local memory. */
  static String ptxasSummary() {
    Optional<String> report = KernelBinaries.ptxasReport();
    if (report.isEmpty()) {
      return "no report (the jar was built without nvcc)";
    }
    int kernels = 0;
    int minReg = Integer.MAX_VALUE;
    int maxReg = 0;
    long local = 0;
    for (String l : report.get().lines().toList()) {
      String[] f = l.trim().split("\\s+");
      if (l.startsWith("#") || f.length != 8) {
        continue;
      }
      kernels++;
      int reg = Integer.parseInt(f[3]);
      minReg = Math.min(minReg, reg);
      maxReg = Math.max(maxReg, reg);
      local += Long.parseLong(f[4]) + Long.parseLong(f[5]) + Long.parseLong(f[6]);
    }
    if (kernels == 0) {
      return "empty report";
    }
    return kernels + " kernel builds, " + minReg + ".." + maxReg + " registers per thread, "
        + (local == 0 ? "no local memory (0 stack, 0 spills)" : local + " bytes of local memory");
  }
}
