package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.spark.cli.DoctorCommand;
import dev.mosaic.spark.cli.UserError;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class DoctorCommandTest {

  private static String run(String... args) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      assertEquals(0, DoctorCommand.run(args, out));
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void reportsThisMachineAndExitsZero() {
    String out = run();
    assertTrue(out.startsWith("mosaic doctor\n"), out);
    assertTrue(out.contains("  java        " + System.getProperty("java.version")), out);
    assertTrue(out.contains("  cpu kernel  panama"), out); // tests run with the Vector API
    assertTrue(out.contains("  spark       4.2.0 (Scala 2.13."), out);
    assertTrue(out.contains("  cuda jars   ok: org.bytedeco:cuda:13.3-9.25-1.5.14"), out);
    assertTrue(out.contains("  kernels     flash_forward"), out);
    assertTrue(out.contains("  kernels     lse_merge"), out);
    assertTrue(out.contains("  ptxas       "), out);
    if (Gpu.available()) {
      assertTrue(out.contains("  gpu         0: "), out);
    } else {
      assertTrue(out.contains("  gpus        none"), out);
      assertTrue(out.contains("GPU path: not available here; missing:\n  - "
          + Gpu.unavailableReason()), out);
      assertTrue(out.contains("The CPU path needs none of this."), out);
    }
  }

  @Test
  void showsTheFatbinAndPtxasReportWhenBuiltWithNvcc() {
    String out = run();
    org.junit.jupiter.api.Assumptions.assumeTrue(out.contains("flash_forward.fatbin"),
        "the jar was built without nvcc");
    assertTrue(out.contains("sm_80, sm_90 SASS + compute_90 PTX"), out);
    assertTrue(out.contains("no local memory (0 stack, 0 spills)"), out);
  }

  @Test
  void unknownFlagsAreUserErrors() {
    UserError e = assertThrows(UserError.class,
        () -> DoctorCommand.run(new String[] {"--verbose"}, System.out));
    assertTrue(e.getMessage().startsWith("unknown flag --verbose for 'doctor'"), e.getMessage());
  }

  @Test
  void clusterFlagsNeedTheClusterCheck() {
    UserError e = assertThrows(UserError.class,
        () -> DoctorCommand.run(new String[] {"--comm", "nccl"}, System.out));
    assertEquals("--master, --device, --gpu-dtype and --comm apply to the cluster check: add --sp N",
        e.getMessage());
  }

  @Test
  void clusterFailuresShowTheTaskReasonNotSparksStackTrace() {
    org.apache.spark.SparkException spark = new org.apache.spark.SparkException("Job aborted due"
        + " to stage failure: Stage failed because barrier task ResultTask(0, 1) finished"
        + " unsuccessfully.\njava.lang.IllegalStateException: NCCL communicator not started: rank"
        + " 0: no usable GPU\n\tat dev.mosaic.X.y(X.java:1)\n\tat dev.mosaic.X.z(X.java:2)");
    assertEquals("NCCL communicator not started: rank 0: no usable GPU",
        DoctorCommand.taskFailure(spark));
    assertEquals("the reason", DoctorCommand.taskFailure(new org.apache.spark.SparkException(
        "Job aborted", new IllegalStateException("the reason"))));
  }
}
