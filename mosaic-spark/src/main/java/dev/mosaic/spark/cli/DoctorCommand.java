package dev.mosaic.spark.cli;

import dev.mosaic.kernels.gpu.FatbinInfo;
import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.kernels.gpu.KernelBinaries;
import dev.mosaic.kernels.simd.VectorizationProvider;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.gpu.Devices;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.runner.ClusterProbe;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.ShardedAttention;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.runner.Transport;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code mosaic doctor}: what this machine offers Mosaic — Java and the CPU kernel's SIMD choice,
 * Spark, whether the CUDA bindings, driver, NVRTC and NCCL load, the GPUs the driver sees, the
 * kernels the jar carries (fatbin architectures, ptxas report) — and what is missing for the GPU
 * path. Diagnostic only: exits 0 whatever it finds (2 for unknown flags). With {@code --sp N} it
 * also runs one barrier stage of N tasks on the cluster ({@link ClusterProbe}) and prints what
 * every task binds, builds and connects; exit 1 when that stage fails.
 */
public final class DoctorCommand {
  public static final String USAGE = String.join("\n",
      "usage: mosaic doctor [--sp N [--master URL] " + DeviceFlags.USAGE + "]",
      "  Reports Java, SIMD, Spark, CUDA/NVRTC/NCCL, GPUs and the CUDA kernels in the jar, and",
      "  what is missing for GPU use. Exit code 0 (also without a GPU).",
      "  --sp N: also runs one barrier stage of N tasks (on --master, default local[max(cores, N)],",
      "  or the spark-submit master) and prints each task's Spark GPUs, bound GPU, kernel and",
      "  communicator, checked with one all-gather, then runs causal ring attention over the",
      "  tasks against the CPU layer; exit code 1 if either fails.");

  private DoctorCommand() {}

  public static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("doctor", args, Set.of("sp", "master", "device", "gpu-dtype", "comm"),
        Set.of());
    if (!f.has("sp") && (f.has("master") || f.has("device") || f.has("gpu-dtype")
        || f.has("comm"))) {
      throw new UserError("--master, --device, --gpu-dtype and --comm apply to the cluster check:"
          + " add --sp N");
    }
    DeviceFlags devices = DeviceFlags.parse(f);
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
    if (!f.has("sp")) {
      return 0;
    }
    int sp = f.positive("sp", 1);
    return clusterCheck(sp, f.string("master", SparkSessions.defaultMaster(sp)), devices, out);
  }

  /** One barrier stage of {@code sp} tasks; prints what each found. 0 when it ran, else 1. */
  private static int clusterCheck(int sp, String master, DeviceFlags devices, PrintStream out) {
    java.util.Map<String, String> conf = new java.util.HashMap<>();
    devices.putInto(conf);
    SparkSession spark = SparkSessions.getOrCreate(master, "mosaic-doctor", conf);
    try {
      MosaicContext ctx = MosaicContext.init(spark, sp);
      // What a job would run with: the flags over spark-submit's and spark-defaults' settings.
      MosaicConfig config = ctx.config();
      out.println("cluster check: " + sp + " barrier tasks on " + spark.sparkContext().master()
          + ", device " + config.device() + ", comm " + config.commBackend() + " ("
          + Transport.choose(config.commBackend(), config.device(), spark.sparkContext().getConf())
              .name().toLowerCase(Locale.ROOT) + ")");
      for (ClusterProbe.TaskReport t : ClusterProbe.run(ctx, config.device())) {
        line(out, "task " + t.rank(), "host " + t.host() + ", executor " + t.executor()
            + ", Spark GPUs " + t.sparkGpus());
        line(out, "", "GPU: " + t.binding());
        line(out, "", "kernel " + t.kernel() + ", communicator " + t.communicator()
            + ", allGather " + t.allGather());
      }
      return attentionCheck(ctx, out) ? 0 : 1;
    } catch (Exception e) { // Spark's job failure is a checked SparkException, undeclared
      out.println("cluster check FAILED: " + taskFailure(e));
      return 1;
    } finally {
      spark.stop();
    }
  }

  /**
   * Causal ring attention over the cluster's tasks on fresh random inputs, against the same layer
   * computed here on the CPU: the whole path (shards, kernel, communicator, merge) end to end.
   * Tolerance: fp32 1e-5; fp16 and bf16 store Q/K/V rounded, so 5e-3 and 3e-2.
   */
  private static boolean attentionCheck(MosaicContext ctx, PrintStream out) {
    int sp = ctx.spSize();
    MosaicConfig config = ctx.config();
    java.util.Random rnd = new java.util.Random();
    int embed = 64;
    int heads = 4;
    Tensor x = Tensor.randn(rnd, 1f, 2, 96 * sp + 5, embed);
    AttentionWeights w = AttentionWeights.random(embed, rnd.nextLong());
    Tensor expected;
    try (MultiAxisAttention local = MultiAxisAttention.builder(embed, heads, 1).weights(w)
        .causal(true).device(Devices.CPU).build()) {
      expected = local.forward(x);
    }
    long t0 = System.nanoTime();
    Tensor actual = ShardedAttention.run(ctx.with(MosaicConfig.JOB_ATTEMPTS, "1"), x,
        new ShardedAttention.Spec(heads, 1, true, Long.MAX_VALUE, w, StrategySpec.of("ring"),
            config.device()));
    double err = RelativeError.of(actual, expected);
    double tolerance = switch (config.gpuDtype()) {
      case FP32 -> 1e-5;
      case FP16 -> 5e-3;
      case BF16 -> 3e-2;
    };
    boolean ok = err < tolerance;
    out.printf(Locale.ROOT, "attention check: causal ring over %d tasks, x %s: relative error"
        + " %.2e against the CPU layer (tolerance %.0e, %s), %.1f s: %s%n", sp,
        java.util.Arrays.toString(x.shape()), err, tolerance, config.gpuDtype(),
        (System.nanoTime() - t0) / 1e9, ok ? "ok" : "FAILED");
    return ok;
  }

  /**
   * The task's own error where Spark kept it as the cause (it wraps it in a SparkException whose
   * message carries a stack trace), else the reason in Spark's message, without the trace.
   */
  public static String taskFailure(Throwable e) {
    return FailureReport.taskReason(e);
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
      if (l.startsWith("#") || f.length < 8) { // 8 columns, or 13 with occupancy, mma and HMMA
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
