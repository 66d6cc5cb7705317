package dev.mosaic.kernels.gpu;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether this JVM can use a GPU, and if not, why: the cheap check every GPU entry point makes
 * before any CUDA class is touched. It never links against the bytedeco classes itself: it looks
 * for them by name ({@link Class#forName}), then loads the implementation ({@code CudaNative})
 * reflectively, so a JVM without the CUDA jars, the native libraries or a GPU runs the CPU path
 * untouched and gets a reason naming what is missing. The probe runs once per JVM.
 */
public final class Gpu {
  /** The bytedeco presets Mosaic is built against. */
  public static final String CUDA_PRESETS_VERSION = "13.3-9.25-1.5.14";
  public static final String BINDINGS_ARTIFACT = "org.bytedeco:cuda:" + CUDA_PRESETS_VERSION;
  /** The JNI glue for Linux x86-64 (no cuda-platform aggregate exists for this version). */
  public static final String JNI_ARTIFACTS = BINDINGS_ARTIFACT + ":linux-x86_64 and"
      + " org.bytedeco:javacpp:1.5.14:linux-x86_64";
  /** CUDA runtime and NVRTC libraries as a jar (~340 MB; not NCCL, not the driver). */
  public static final String REDIST_ARTIFACT = "org.bytedeco:cuda-redist:" + CUDA_PRESETS_VERSION
      + ":linux-x86_64";
  static final String BINDINGS_CLASS = "org.bytedeco.cuda.global.cudart";
  static final String NATIVE_IMPL = "dev.mosaic.kernels.gpu.CudaNative";

  /** One thing that was checked: whether it works and what was found, or why not. */
  public record Status(boolean ok, String detail) {
    static Status ok(String detail) {
      return new Status(true, detail);
    }

    static Status fail(String detail) {
      return new Status(false, detail);
    }
  }

  /**
   * A GPU the driver shows this process (after {@code CUDA_VISIBLE_DEVICES}).
   *
   * @param computeCapability {@code 10*major + minor}, e.g. 90 for an H100
   * @param maxSharedPerBlock the opt-in shared memory limit per block, bytes
   */
  public record Device(int ordinal, String name, int computeCapability, long memoryBytes,
      String pciBusId, int maxSharedPerBlock) {
    @Override
    public String toString() {
      return ordinal + ": " + name + ", sm_" + computeCapability + ", "
          + (memoryBytes >> 20) + " MiB, PCI " + pciBusId;
    }
  }

  /** What the probe found. */
  public record Report(Status bindings, Status cuda, Status nvrtc, Status nccl,
      List<Device> devices) {
    public Report {
      devices = List.copyOf(devices);
    }

    /** A GPU kernel can run: the driver loaded and sees at least one device. */
    public boolean usable() {
      return cuda.ok() && !devices.isEmpty();
    }

    /** Why no GPU kernel can run, or "" when one can. */
    public String reason() {
      if (!bindings.ok()) {
        return bindings.detail();
      }
      if (!cuda.ok()) {
        return cuda.detail();
      }
      if (devices.isEmpty()) {
        return "the CUDA driver sees no GPU (CUDA_VISIBLE_DEVICES="
            + System.getenv().getOrDefault("CUDA_VISIBLE_DEVICES", "<unset>") + ")";
      }
      return "";
    }

    /** Everything still missing for the full GPU path (kernels and NCCL), one item each. */
    public List<String> missing() {
      List<String> m = new ArrayList<>();
      if (!usable()) {
        m.add(reason());
      }
      if (!nvrtc.ok()) {
        m.add("NVRTC (only needed when the jar has no fatbin for the GPU): " + nvrtc.detail());
      }
      if (!nccl.ok()) {
        m.add("NCCL (needed for multi-GPU communicators): " + nccl.detail());
      }
      return m;
    }
  }

  private static final class Holder {
    static final Report REPORT = probe();
  }

  private Gpu() {}

  /** The probe's findings (computed once). */
  public static Report report() {
    return Holder.REPORT;
  }

  /** True when a GPU kernel can run in this JVM. */
  public static boolean available() {
    return report().usable();
  }

  /** Why {@link #available()} is false; "" when it is true. */
  public static String unavailableReason() {
    return report().reason();
  }

  /**
   * Raw memory on visible device {@code device}, for a {@link DeviceArena} (which closes it);
   * throws {@link IllegalStateException} with the reason when no GPU is usable.
   */
  public static DeviceAllocator allocator(int device) {
    return nativeCuda().allocator(device);
  }

  /** The implementation behind the GPU classes; throws with the reason when there is no GPU. */
  static NativeCuda nativeCuda() {
    Report r = report();
    if (!r.usable()) {
      throw new IllegalStateException("no usable GPU: " + r.reason());
    }
    return loadNative();
  }

  private static NativeCuda loadNative() {
    try {
      return (NativeCuda) Class.forName(NATIVE_IMPL).getDeclaredConstructor().newInstance();
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot load " + NATIVE_IMPL + ": " + e, e);
    }
  }

  static Report probe() {
    Status bindings = bindingsStatus(Gpu.class.getClassLoader());
    if (!bindings.ok()) {
      Status skipped = Status.fail("not checked: " + bindings.detail());
      return new Report(bindings, skipped, skipped, skipped, List.of());
    }
    try {
      return loadNative().probe(bindings);
    } catch (RuntimeException | LinkageError e) {
      Status failed = Status.fail(explainLoadFailure(e));
      return new Report(bindings, failed, failed, failed, List.of());
    }
  }

  /** Are the bytedeco CUDA classes on the class path? (Loads nothing native.) */
  static Status bindingsStatus(ClassLoader loader) {
    try {
      Class.forName(BINDINGS_CLASS, false, loader);
      return Status.ok(BINDINGS_ARTIFACT + " on the class path");
    } catch (ClassNotFoundException | LinkageError e) {
      return Status.fail("the CUDA bindings are not on the class path: add " + BINDINGS_ARTIFACT
          + " and the JNI jars " + JNI_ARTIFACTS);
    }
  }

  /**
   * Turns a failure to load a CUDA native library into one line that says what is missing and
   * which artifact or installation provides it.
   */
  public static String explainLoadFailure(Throwable t) {
    StringBuilder chain = new StringBuilder();
    String deepest = String.valueOf(t);
    for (Throwable c = t; c != null; c = c.getCause()) {
      chain.append(c).append('\n');
      deepest = c.getMessage() != null ? c.getMessage() : c.toString();
      if (c.getCause() == c) {
        break;
      }
    }
    String all = chain.toString();
    String hint;
    if (all.contains("libcuda.so")) {
      hint = "the NVIDIA driver library libcuda.so.1 is not installed: no NVIDIA driver on this"
          + " machine";
    } else if (all.contains("libcudart.so")) {
      hint = "the CUDA 13 runtime libcudart.so.13 is not found: install CUDA 13 (its lib64 on"
          + " LD_LIBRARY_PATH) or add " + REDIST_ARTIFACT + " (mvn -Pcuda-redist)";
    } else if (all.contains("libnvrtc")) {
      hint = "NVRTC (libnvrtc.so.13) is not found: install the CUDA 13 toolkit's NVRTC or add "
          + REDIST_ARTIFACT + " (mvn -Pcuda-redist)";
    } else if (all.contains("libnccl")) {
      hint = "NCCL (libnccl.so.2) is not found: install NCCL 2 for CUDA 13 (e.g. the libnccl2"
          + " package from NVIDIA's CUDA repository) on the library path";
    } else if (all.contains("no jni")) {
      hint = "the bytedeco JNI libraries for this platform are missing: add " + JNI_ARTIFACTS;
    } else {
      hint = "CUDA bindings failed to load";
    }
    String detail = deepest.replace('\n', ' ');
    if (detail.length() > 240) {
      detail = detail.substring(0, 240) + "...";
    }
    return hint + " [" + detail + "]";
  }
}
