package dev.mosaic.kernels.gpu;

import static org.bytedeco.cuda.global.cudart.cuDeviceGet;
import static org.bytedeco.cuda.global.cudart.cuDeviceGetAttribute;
import static org.bytedeco.cuda.global.cudart.cuDeviceGetCount;
import static org.bytedeco.cuda.global.cudart.cuDeviceGetName;
import static org.bytedeco.cuda.global.cudart.cuDeviceGetPCIBusId;
import static org.bytedeco.cuda.global.cudart.cuDeviceTotalMem;
import static org.bytedeco.cuda.global.cudart.cuDriverGetVersion;
import static org.bytedeco.cuda.global.cudart.cuInit;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The bytedeco-backed side of {@link NativeCuda}. Loaded by name from {@link Gpu} only after the
 * CUDA classes were found on the class path; every native load failure becomes a
 * {@link Gpu.Status} with a reason instead of an exception.
 */
final class CudaNative implements NativeCuda {
  static final String CUDART_CLASS = "org.bytedeco.cuda.global.cudart";
  static final String NVRTC_CLASS = "org.bytedeco.cuda.global.nvrtc";
  static final String NCCL_CLASS = "org.bytedeco.cuda.global.nccl";

  @Override
  public Gpu.Report probe(Gpu.Status bindings) {
    Gpu.Status loaded = load(CUDART_CLASS);
    if (!loaded.ok()) {
      Gpu.Status skipped = Gpu.Status.fail("not checked: the CUDA driver bindings did not load");
      return new Gpu.Report(bindings, loaded, skipped, skipped, List.of());
    }
    List<Gpu.Device> devices = new ArrayList<>();
    Gpu.Status cuda;
    int r = cuInit(0);
    int[] version = new int[1];
    cuDriverGetVersion(version);
    String driver = "CUDA driver API " + version[0] / 1000 + "." + version[0] % 1000 / 10;
    if (r == cudart.CUDA_ERROR_NO_DEVICE) {
      cuda = Gpu.Status.ok(driver + ", no CUDA device visible");
    } else if (r != 0) {
      String hint = r == cudart.CUDA_ERROR_SYSTEM_DRIVER_MISMATCH
          || r == cudart.CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE
          ? ": the NVIDIA kernel driver does not match libcuda, or is too old for CUDA 13"
              + " (needs r580 or newer)" : "";
      cuda = Gpu.Status.fail(driver + ": cuInit failed with " + CudaContext.errorName(r) + hint);
    } else {
      int[] count = new int[1];
      CudaContext.check(cuDeviceGetCount(count), "cuDeviceGetCount");
      for (int i = 0; i < count[0]; i++) {
        devices.add(device(i));
      }
      cuda = Gpu.Status.ok(driver + ", " + count[0] + " device(s)");
    }
    Gpu.Status nvrtcStatus = versionOf(NVRTC_CLASS, () -> {
      int[] major = new int[1];
      int[] minor = new int[1];
      nvrtc.nvrtcVersion(major, minor);
      return "NVRTC " + major[0] + "." + minor[0];
    });
    Gpu.Status ncclStatus = versionOf(NCCL_CLASS, () -> {
      int[] v = new int[1];
      nccl.ncclGetVersion(v);
      return "NCCL " + v[0] / 10000 + "." + v[0] % 10000 / 100 + "." + v[0] % 100;
    });
    return new Gpu.Report(bindings, cuda, nvrtcStatus, ncclStatus, devices);
  }

  private static Gpu.Device device(int ordinal) {
    int[] dev = new int[1];
    CudaContext.check(cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
    byte[] name = new byte[256];
    CudaContext.check(cuDeviceGetName(name, name.length, dev[0]), "cuDeviceGetName");
    byte[] bus = new byte[64];
    String pci = cuDeviceGetPCIBusId(bus, bus.length, dev[0]) == 0 ? cString(bus) : "?";
    long memory;
    try (SizeTPointer bytes = new SizeTPointer(1)) {
      CudaContext.check(cuDeviceTotalMem(bytes, dev[0]), "cuDeviceTotalMem");
      memory = bytes.get();
    }
    return new Gpu.Device(ordinal, cString(name),
        attribute(cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev[0]) * 10
            + attribute(cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev[0]),
        memory, pci, attribute(cudart.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
            dev[0]));
  }

  private static int attribute(int attribute, int device) {
    int[] v = new int[1];
    CudaContext.check(cuDeviceGetAttribute(v, attribute, device), "cuDeviceGetAttribute");
    return v[0];
  }

  private static String cString(byte[] b) {
    int n = 0;
    while (n < b.length && b[n] != 0) {
      n++;
    }
    return new String(b, 0, n, StandardCharsets.UTF_8);
  }

  /** Initialises a bytedeco class (which loads its JNI library and the library it binds). */
  private static Gpu.Status load(String className) {
    try {
      Class.forName(className, true, CudaNative.class.getClassLoader());
      return Gpu.Status.ok("loaded");
    } catch (ClassNotFoundException | LinkageError e) {
      return Gpu.Status.fail(Gpu.explainLoadFailure(e));
    }
  }

  private static Gpu.Status versionOf(String className, Supplier<String> version) {
    Gpu.Status s = load(className);
    if (!s.ok()) {
      return s;
    }
    try {
      return Gpu.Status.ok(version.get());
    } catch (RuntimeException | LinkageError e) {
      return Gpu.Status.fail(Gpu.explainLoadFailure(e));
    }
  }

  @Override
  public FlashBackend openFlash(int device, GpuDtype dtype, DeviceArena arena) {
    return new CudaFlashBackend(device, dtype, arena);
  }

  @Override
  public DeviceAllocator allocator(int device) {
    try (CudaContext ctx = CudaContext.primary(device)) {
      return ctx.allocator();
    }
  }
}
