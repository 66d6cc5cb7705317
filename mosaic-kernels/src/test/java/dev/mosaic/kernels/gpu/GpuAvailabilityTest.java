package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import org.junit.jupiter.api.Test;

/** The availability check: never throws, explains what is missing, and needs no CUDA jar. */
class GpuAvailabilityTest {

  @Test
  void probeAnswersWithAReasonInsteadOfThrowing() {
    Gpu.Report r = Gpu.report();
    assertTrue(r.bindings().ok(), "bytedeco CUDA is a dependency of mosaic-kernels: "
        + r.bindings().detail());
    if (!r.usable()) {
      assertFalse(Gpu.unavailableReason().isEmpty());
      assertFalse(CudaFlashAttention.available());
      IllegalStateException e = assertThrows(IllegalStateException.class,
          CudaFlashAttention::open);
      assertEquals("no usable GPU: " + Gpu.unavailableReason(), e.getMessage());
      assertFalse(r.missing().isEmpty());
    } else {
      assertEquals("", Gpu.unavailableReason());
      assertFalse(r.devices().isEmpty());
    }
  }

  @Test
  void explainsEachMissingLibrary() {
    Throwable noDriver = new UnsatisfiedLinkError("no jnicudart in java.library.path: /usr/lib");
    noDriver.initCause(new UnsatisfiedLinkError("/root/.javacpp/cache/libjnicudart.so:"
        + " libcuda.so.1: cannot open shared object file: No such file or directory"));
    String s = Gpu.explainLoadFailure(new ExceptionInInitializerError(noDriver.toString()) {
      private static final long serialVersionUID = 1L;

      @Override
      public synchronized Throwable getCause() {
        return noDriver;
      }
    });
    assertTrue(s.startsWith("the NVIDIA driver library libcuda.so.1 is not installed"), s);

    s = Gpu.explainLoadFailure(new UnsatisfiedLinkError("libcudart.so.13: cannot open"));
    assertTrue(s.contains("CUDA 13 runtime") && s.contains(Gpu.REDIST_ARTIFACT), s);
    s = Gpu.explainLoadFailure(new UnsatisfiedLinkError("libnccl.so.2: cannot open"));
    assertTrue(s.startsWith("NCCL (libnccl.so.2) is not found: install NCCL 2"), s);
    s = Gpu.explainLoadFailure(new UnsatisfiedLinkError("libnvrtc.so.13: cannot open"));
    assertTrue(s.startsWith("NVRTC"), s);
    s = Gpu.explainLoadFailure(new UnsatisfiedLinkError("no jninccl in java.library.path"));
    assertTrue(s.contains(Gpu.BINDINGS_ARTIFACT + ":linux-x86_64"), s);
  }

  /** Loads Mosaic's classes afresh with every org.bytedeco class hidden. */
  static final class WithoutBytedeco extends URLClassLoader {
    WithoutBytedeco() {
      super(new URL[] {Gpu.class.getProtectionDomain().getCodeSource().getLocation()},
          ClassLoader.getPlatformClassLoader());
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
      if (name.startsWith("org.bytedeco.")) {
        throw new ClassNotFoundException(name + " (hidden by the test)");
      }
      return super.loadClass(name, resolve);
    }
  }

  @Test
  void withoutTheCudaJarsTheCpuPathRunsAndTheGpuPathNamesTheArtifact() throws Exception {
    try (WithoutBytedeco loader = new WithoutBytedeco()) {
      Class<?> gpu = loader.loadClass(Gpu.class.getName());
      Object report = gpu.getMethod("report").invoke(null);
      String reason = (String) report.getClass().getMethod("reason").invoke(report);
      assertTrue(reason.contains("org.bytedeco:cuda:13.3-9.25-1.5.14"), reason);

      Class<?> cuda = loader.loadClass(CudaFlashAttention.class.getName());
      assertEquals(false, cuda.getMethod("available").invoke(null));
      Method open = cuda.getMethod("open");
      InvocationTargetException e = assertThrows(InvocationTargetException.class,
          () -> open.invoke(null));
      assertTrue(e.getCause() instanceof IllegalStateException, e.getCause().toString());
      assertTrue(e.getCause().getMessage().contains(Gpu.BINDINGS_ARTIFACT),
          e.getCause().getMessage());

      // The CPU kernel in the same loader: works without any org.bytedeco class.
      Class<?> cpu = loader.loadClass("dev.mosaic.kernels.CpuFlashAttention");
      Class<?> tensor = loader.loadClass("dev.mosaic.kernels.Tensor");
      Class<?> view = loader.loadClass("dev.mosaic.kernels.BlockView");
      Class<?> mask = loader.loadClass("dev.mosaic.kernels.AttentionMask");
      Object kernel = cpu.getConstructor(int.class).newInstance(1);
      Object x = tensor.getMethod("zeros", int[].class).invoke(null, (Object) new int[] {3, 1, 8});
      Object v = view.getMethod("of", tensor).invoke(null, x);
      float[] lse = new float[3];
      cpu.getMethod("forward", view, view, view, float.class, mask, view, float[].class)
          .invoke(kernel, v, v, v, 1f, mask.getField("NONE").get(null), v, lse);
      assertEquals((float) Math.log(3), lse[0], 1e-6);
      cpu.getMethod("close").invoke(kernel);
    }
  }
}
