package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.spark.cli.DoctorCommand;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Spark's GPU scheduling as a GPU cluster runs it, on a machine without GPUs: a standalone worker
 * ({@code local-cluster[1,2,...]}, an executor JVM with two cores) discovers two GPUs through
 * {@code conf/gpu/getGpusResources.sh} (told by {@code MOSAIC_GPU_ADDRESSES} what to report), and the stage asks for one GPU per task. Checked through
 * {@code mosaic doctor --sp 2}: each task gets its own address from Spark and binds that CUDA
 * device; with {@code --comm tcp} the stage runs (kernels fall back to the CPU: no CUDA here);
 * with {@code --comm auto} the runner picks NCCL, and every task reports why NCCL cannot start
 * instead of hanging. What this cannot check — CUDA and NCCL themselves — {@code mosaic selftest}
 * checks on a GPU machine.
 */
@Timeout(240)
class GpuSchedulingIT {
  private static final String MASTER = "local-cluster[1,2,1536]";
  private static final Map<String, String> GPU_CONF = new java.util.LinkedHashMap<>();

  @BeforeAll
  static void fakeGpus() throws IOException {
    Assumptions.assumeFalse(Gpu.available(), "real GPUs here: the fake discovery would lie");
    ItSparkHome.prepare();
    // The discovery script users deploy; failsafe sets MOSAIC_GPU_ADDRESSES=0,1 so that it
    // reports two GPUs without nvidia-smi.
    Path script = Path.of("..", "conf", "gpu", "getGpusResources.sh").toAbsolutePath().normalize();
    assertTrue(Files.isExecutable(script), "no discovery script at " + script);
    assertEquals("0,1", System.getenv("MOSAIC_GPU_ADDRESSES"), "failsafe sets it");
    GPU_CONF.put("spark.worker.resource.gpu.amount", "2");
    GPU_CONF.put("spark.worker.resource.gpu.discoveryScript", script.toString());
    GPU_CONF.put("spark.executor.resource.gpu.amount", "2");
    GPU_CONF.put("spark.executor.resource.gpu.discoveryScript", script.toString());
    GPU_CONF.put("spark.task.resource.gpu.amount", "1");
    GPU_CONF.put("spark.executor.memory", "1g");
    GPU_CONF.put("spark.ui.enabled", "false");
    GPU_CONF.put("spark.barrier.sync.timeout", "60s");
    GPU_CONF.put(MosaicConfig.COMM_TIMEOUT, "60s");
    GPU_CONF.put(MosaicConfig.EXECUTOR_WAIT, "90s");
    // SparkConf reads spark.* system properties: the doctor's session gets them like
    // spark-submit's --conf.
    GPU_CONF.forEach(System::setProperty);
  }

  @AfterAll
  static void clear() {
    GPU_CONF.keySet().forEach(System::clearProperty);
  }

  @Test
  void eachTaskBindsTheGpuSparkAssignedIt() {
    String out = doctor(0, "--master", MASTER, "--sp", "2", "--comm", "tcp");
    assertTrue(out.contains("cluster check: 2 barrier tasks on " + MASTER
        + ", device auto, comm tcp (tcp)"), out);
    Matcher m = Pattern.compile("task (\\d)\\s+host \\S+, executor (\\S+), Spark GPUs \\[(\\d)\\]")
        .matcher(out);
    List<String> addresses = new java.util.ArrayList<>();
    while (m.find()) {
      assertTrue(!m.group(2).equals("driver"), "tasks ran in an executor JVM: " + out);
      addresses.add(m.group(3));
    }
    assertEquals(List.of("0", "1"), addresses.stream().sorted().toList(),
        "one distinct GPU per task: " + out);
    for (String a : addresses) {
      assertTrue(out.contains("GPU: CUDA device " + a + " (Spark resources(\"gpu\") = [" + a
          + "])"), out);
    }
    assertEquals(2, count(out, "kernel CpuFlashAttention, communicator TcpCommunicator,"
        + " allGather ok (2 ranks)"), out);
    assertTrue(out.contains("attention check: causal ring over 2 tasks, x [2, 197, 64]: relative"
        + " error "), out);
    assertTrue(out.contains("(tolerance 1e-05, FP32)") && out.strip().endsWith(": ok"), out);
  }

  @Test
  void autoPicksNcclAndEveryTaskSaysWhyItCannotStart() {
    String out = doctor(1, "--master", MASTER, "--sp", "2");
    assertTrue(out.contains("device auto, comm auto (nccl)"), out);
    assertTrue(out.contains("cluster check FAILED: NCCL communicator not started: rank 0 (stage"),
        out);
    assertTrue(out.contains("; rank 1 (stage "), out);
    assertEquals(2, count(out, ": no usable GPU: "), out);
    assertTrue(out.contains("(to run this stage over TCP instead, set"
        + " spark.mosaic.comm.backend=tcp)"), out);
  }

  private static String doctor(int expectedCode, String... args) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    int code = DoctorCommand.run(args, new PrintStream(buf, true, StandardCharsets.UTF_8));
    String out = buf.toString(StandardCharsets.UTF_8);
    System.out.println(out); // the report, in the build log
    assertEquals(expectedCode, code, out);
    return out;
  }

  private static int count(String s, String part) {
    int n = 0;
    for (int i = s.indexOf(part); i >= 0; i = s.indexOf(part, i + 1)) {
      n++;
    }
    return n;
  }
}
