package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The CLI's GPU commands in a class loader that has everything but the bytedeco jars: doctor
 * names the artifact to add and exits 0; selftest says there is no GPU and exits 0.
 */
class WithoutCudaJarsTest {

  private static URLClassLoader withoutBytedeco() throws Exception {
    List<URL> urls = new ArrayList<>();
    for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
      if (!entry.contains("bytedeco") && !entry.isEmpty()) {
        urls.add(Path.of(entry).toUri().toURL());
      }
    }
    return new URLClassLoader(urls.toArray(URL[]::new), ClassLoader.getPlatformClassLoader());
  }

  private static String call(ClassLoader loader, String cls, int expected) throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      Object code = loader.loadClass(cls).getMethod("run", String[].class, PrintStream.class)
          .invoke(null, new String[0], out);
      assertEquals(expected, code, bytes.toString(StandardCharsets.UTF_8));
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void doctorAndSelftestExplainTheMissingJars() throws Exception {
    try (URLClassLoader loader = withoutBytedeco()) {
      assertTrue(loader.getResource("org/bytedeco/cuda/global/cudart.class") == null);
      String doctor = call(loader, "dev.mosaic.spark.cli.DoctorCommand", 0);
      assertTrue(doctor.contains("  cuda jars   NO: the CUDA bindings are not on the class path:"
          + " add org.bytedeco:cuda:13.3-9.25-1.5.14"), doctor);
      assertTrue(doctor.contains("GPU path: not available here; missing:"), doctor);
      String selftest = call(loader, "dev.mosaic.spark.cli.SelftestCommand", 0);
      // the seed and the CPU kernel's lines come first; then why the GPU half did not run
      assertTrue(selftest.contains("\nselftest: no usable GPU: the CUDA bindings are not on the"
          + " class path"), selftest);
      assertTrue(selftest.contains("selftest: gqa cpu "), selftest);
    }
  }
}
