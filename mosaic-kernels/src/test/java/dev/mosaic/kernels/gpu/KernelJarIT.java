package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.jar.JarFile;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The packaged mosaic-kernels jar, read on its own: what a cluster gets. */
class KernelJarIT {

  @Test
  void jarCarriesTheKernelsAndTheyLoadFromIt() throws Exception {
    Path jar = Path.of(System.getProperty("mosaic.kernelsJar", "missing"));
    assertTrue(Files.isRegularFile(jar), "no packaged jar at " + jar);
    try (JarFile j = new JarFile(jar.toFile())) {
      for (String m : KernelBinaries.MODULES) {
        assertNotNull(j.getEntry("dev/mosaic/kernels/gpu/cuda/" + m + ".cu"), m + ".cu");
      }
    }
    Assumptions.assumeTrue(KernelBinariesTest.nvccPresent(), "built without nvcc: no fatbin");
    Assumptions.assumeFalse(Boolean.getBoolean("mosaic.cuda.skip"), "-Dmosaic.cuda.skip=true");
    // A loader that sees only the jar: KernelBinaries comes from it and reads its resources.
    try (URLClassLoader only = new URLClassLoader(new URL[] {jar.toUri().toURL()},
        ClassLoader.getPlatformClassLoader())) {
      Class<?> kb = only.loadClass(KernelBinaries.class.getName());
      assertEquals(jar.toUri().toURL(), kb.getProtectionDomain().getCodeSource().getLocation());
      for (String m : KernelBinaries.MODULES) {
        @SuppressWarnings("unchecked")
        Optional<byte[]> fatbin = (Optional<byte[]>) kb.getMethod("fatbin", String.class)
            .invoke(null, m);
        assertTrue(fatbin.isPresent(), m + ".fatbin missing from " + jar);
        FatbinInfo info = FatbinInfo.parse(fatbin.get());
        assertEquals(List.of(80, 90), info.sassArchs(), m);
        assertEquals(List.of(90), info.ptxArchs(), m);
      }
      @SuppressWarnings("unchecked")
      Optional<String> report = (Optional<String>) kb.getMethod("ptxasReport").invoke(null);
      assertTrue(report.isPresent() && report.get().contains("mosaic_flash_fwd_bf16_d128"),
          "ptxas report missing from " + jar);
    }
  }
}
