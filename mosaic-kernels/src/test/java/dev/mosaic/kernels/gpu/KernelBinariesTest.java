package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * What the build put on the class path (and so in the jar): the .cu sources always; with nvcc, a
 * fatbin per module holding sm_80 and sm_90 SASS plus PTX, and a ptxas report showing that no
 * kernel uses local memory (stack or spills).
 */
class KernelBinariesTest {

  /** nvcc as the build script finds it: $NVCC, the PATH, $CUDA_HOME/bin. */
  static boolean nvccPresent() {
    String env = System.getenv("NVCC");
    if (env != null && !env.isEmpty()) {
      return true;
    }
    for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "nvcc"))) {
        return true;
      }
    }
    String home = System.getenv("CUDA_HOME");
    return home != null && Files.isExecutable(Path.of(home, "bin", "nvcc"));
  }

  private static void assumeFatbinBuild() {
    Assumptions.assumeTrue(nvccPresent(), "nvcc is not on this machine: the build made no fatbin"
        + " (NVRTC compiles the shipped sources at first use instead)");
    Assumptions.assumeFalse(Boolean.getBoolean("mosaic.cuda.skip"),
        "-Dmosaic.cuda.skip=true: nvcc was not run");
  }

  @Test
  void sourcesAreShippedForNvrtcAndIncludeNothing() {
    for (String module : KernelBinaries.MODULES) {
      String src = KernelBinaries.source(module);
      assertTrue(src.contains("extern \"C\" __global__"), module);
      // NVRTC has no host headers: the kernels must be self-contained.
      assertFalse(src.lines().anyMatch(l -> l.strip().startsWith("#include")),
          module + ".cu includes a header");
    }
  }

  @Test
  void everyKernelTheJavaSideLaunchesIsDefinedInTheSource() {
    String flash = KernelBinaries.source(KernelBinaries.FLASH_FORWARD);
    for (GpuDtype t : GpuDtype.values()) {
      for (int d : new int[] {1, 32, 33, 64, 65, 128, 129, 256}) {
        String name = FlashLaunch.of(t, 1, 1, 1, 1, d).kernelName();
        assertTrue(flash.contains("(" + name + ","), name + " missing from flash_forward.cu");
      }
    }
    String tc = KernelBinaries.source(KernelBinaries.FLASH_FORWARD_TC);
    for (GpuDtype t : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      for (int d : new int[] {1, 32, 33, 64, 65, 128, 129, 256}) {
        TensorCoreLaunch l = TensorCoreLaunch.of(t, 1, 1, 1, 1, d, false);
        for (String name : new String[] {l.kernelName(), l.varlenKernelName()}) {
          assertTrue(tc.contains("(" + name + ","), name + " missing from flash_forward_tc.cu");
        }
      }
      String convert = ConvertLaunch.kernelName(t);
      assertTrue(KernelBinaries.source(KernelBinaries.CONVERT).contains("\n" + convert + "("),
          convert + " missing from convert.cu");
    }
    assertTrue(KernelBinaries.source(KernelBinaries.LSE_MERGE)
        .contains(FlashLaunch.MERGE_KERNEL + "("));
  }

  @Test
  void fatbinsAreResourcesWithSm80AndSm90AndPtx() {
    assumeFatbinBuild();
    for (String module : KernelBinaries.MODULES) {
      Optional<byte[]> fatbin = KernelBinaries.fatbin(module);
      assertTrue(fatbin.isPresent(), KernelBinaries.fatbinResource(module)
          + " is not on the class path although nvcc is here");
      FatbinInfo info = FatbinInfo.parse(fatbin.get());
      assertEquals(List.of(80, 90), info.sassArchs(), module + ": " + info.describe());
      assertEquals(List.of(90), info.ptxArchs(), module + ": " + info.describe());
      assertTrue(info.runsOn(80) && info.runsOn(86) && info.runsOn(90) && info.runsOn(100),
          module + " should run on A100, RTX 30xx, H100 and (via PTX) newer GPUs");
      assertFalse(info.runsOn(75), module + " has no code for Turing");
      assertTrue(KernelBinaries.describe(module).contains("sm_80, sm_90 SASS + compute_90 PTX"),
          KernelBinaries.describe(module));
    }
  }

  @Test
  void ptxasReportShowsNoLocalMemoryForAnyKernel() {
    assumeFatbinBuild();
    String report = KernelBinaries.ptxasReport().orElseThrow(() -> new AssertionError(
        KernelBinaries.PTXAS_REPORT + " missing although nvcc is here"));
    Set<String> seen = new TreeSet<>();
    List<String> local = new ArrayList<>();
    for (String line : report.lines().toList()) {
      if (line.startsWith("#") || line.isBlank()) {
        continue;
      }
      // module arch kernel registers stack spill_stores spill_loads static_smem dyn_smem
      // blocks_per_sm occupancy_pct tensor_core_mma hmma_sass ("-": no cuobjdump in the toolkit)
      String[] f = line.trim().split("\\s+");
      assertEquals(13, f.length, "report line: " + line);
      boolean tensorCoreKernel = f[2].startsWith("mosaic_flash_tc_");
      assertEquals(tensorCoreKernel, Integer.parseInt(f[11]) > 0,
          "wmma.mma in the PTX of tensor-core kernels, and only there: " + line);
      if (!f[12].equals("-")) {
        assertEquals(tensorCoreKernel, Integer.parseInt(f[12]) > 0,
            "HMMA in the SASS of tensor-core kernels, and only there: " + line);
      }
      if (tensorCoreKernel) {
        int bucket = Integer.parseInt(f[2].substring(f[2].lastIndexOf("_d") + 2));
        assertEquals(TensorCoreLaunch.sharedBytes(bucket), Integer.parseInt(f[8]), line);
      }
      int registers = Integer.parseInt(f[3]);
      assertTrue(registers > 0 && registers <= 255, line);
      if (Long.parseLong(f[4]) + Long.parseLong(f[5]) + Long.parseLong(f[6]) != 0) {
        local.add(line);
      }
      seen.add(f[1] + " " + f[2]);
    }
    assertTrue(local.isEmpty(), "kernels using local memory (stack or spills): " + local);
    for (String arch : new String[] {"sm_80", "sm_90"}) {
      assertTrue(seen.contains(arch + " " + FlashLaunch.MERGE_KERNEL), arch + " merge: " + seen);
      for (GpuDtype t : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
        for (int d : new int[] {32, 64, 128, 256}) {
          String k = TensorCoreLaunch.of(t, 1, 1, 1, 1, d, false).kernelName();
          assertTrue(seen.contains(arch + " " + k), arch + " " + k + " missing from the report");
        }
      }
      for (GpuDtype t : GpuDtype.values()) {
        for (int d : new int[] {32, 64, 128, 256}) {
          String k = FlashLaunch.of(t, 1, 1, 1, 1, d).kernelName();
          assertTrue(seen.contains(arch + " " + k), arch + " " + k + " missing from the report");
        }
      }
    }
  }
}
