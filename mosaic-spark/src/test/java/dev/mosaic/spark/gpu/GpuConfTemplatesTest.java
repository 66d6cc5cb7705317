package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

/** conf/gpu/: the discovery script's output as Spark parses it, and the templates' key lines. */
class GpuConfTemplatesTest {
  private static final Path CONF = Path.of(System.getProperty("basedir",
      System.getProperty("user.dir"))).resolve("../conf/gpu").normalize();

  private record Result(int code, String out, String err) {}

  private static Result script(Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder("bash", CONF.resolve("getGpusResources.sh").toString());
    pb.environment().remove("MOSAIC_GPU_ADDRESSES");
    pb.environment().putAll(env);
    Path err = Files.createTempFile("gpus", ".err");
    pb.redirectError(err.toFile());
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    String e = Files.readString(err);
    Files.delete(err);
    return new Result(p.exitValue(), out, e);
  }

  private static Path fakeSmi(String body) throws IOException {
    Path f = Files.createTempFile("nvidia-smi", ".sh",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    Files.writeString(f, "#!/bin/sh\n" + body + "\n");
    f.toFile().deleteOnExit();
    return f;
  }

  @Test
  void discoveryOutputIsWhatSparkParses() throws Exception {
    Result r = script(Map.of("NVIDIA_SMI", fakeSmi("printf '0\\n1\\n2\\n3\\n'").toString()));
    assertEquals(0, r.code(), r.err());
    ResourceInformation info = ResourceInformation.parseJson(r.out());
    assertEquals("gpu", info.name());
    assertEquals(List.of("0", "1", "2", "3"), List.of(info.addresses()));

    r = script(Map.of("MOSAIC_GPU_ADDRESSES", "0,1"));
    assertEquals("{\"name\":\"gpu\",\"addresses\":[\"0\",\"1\"]}", r.out());
  }

  @Test
  void discoveryFailsLoudlyWithoutAWorkingNvidiaSmi() throws Exception {
    Result r = script(Map.of("NVIDIA_SMI", fakeSmi("echo 'NVIDIA-SMI has failed' >&2; exit 9")
        .toString()));
    assertEquals(1, r.code());
    assertTrue(r.err().contains("nvidia-smi failed") && r.err().contains("NVIDIA-SMI has failed"),
        r.err());
    r = script(Map.of("NVIDIA_SMI", fakeSmi("echo 'GPU-0'").toString()));
    assertEquals(1, r.code());
    assertTrue(r.err().contains("unexpected GPU index 'GPU-0'"), r.err());
  }

  private static Properties template(String name) throws IOException {
    Properties p = new Properties();
    try (Reader in = Files.newBufferedReader(CONF.resolve(name))) {
      p.load(in); // spark-defaults.conf is read the same way (key, whitespace, value)
    }
    return p;
  }

  @Test
  void everyClusterTemplateGivesEachTaskOneGpu() throws Exception {
    for (String t : new String[] {"spark-defaults.standalone.conf", "spark-defaults.yarn.conf",
        "spark-defaults.k8s.conf"}) {
      Properties p = template(t);
      assertEquals("1", p.getProperty("spark.task.resource.gpu.amount"), t);
      assertEquals("1", p.getProperty("spark.executor.resource.gpu.amount"), t);
      assertEquals("PCI_BUS_ID", p.getProperty("spark.executorEnv.CUDA_DEVICE_ORDER"), t);
      assertEquals("false", p.getProperty("spark.dynamicAllocation.enabled"), t);
      assertEquals("/opt/mosaic/lib/*.jar", p.getProperty("spark.jars"), t); // bytedeco jars
      assertEquals(null, p.getProperty("spark.jars.packages"), t); // cannot fetch classifiers
      String script = p.getProperty("spark.executor.resource.gpu.discoveryScript",
          p.getProperty("spark.worker.resource.gpu.discoveryScript"));
      assertTrue(script != null && script.endsWith("getGpusResources.sh"), t);
    }
    assertEquals("nvidia.com", template("spark-defaults.k8s.conf")
        .getProperty("spark.executor.resource.gpu.vendor"));
    Properties rapids = template("spark-defaults.rapids.conf");
    assertEquals("com.nvidia.spark.SQLPlugin", rapids.getProperty("spark.plugins"));
    assertEquals("1", rapids.getProperty("spark.task.resource.gpu.amount"));
    assertTrue(rapids.getProperty("spark.jars").startsWith("/opt/mosaic/lib/*.jar,"));
  }
}
