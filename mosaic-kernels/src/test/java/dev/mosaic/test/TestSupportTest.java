package dev.mosaic.test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

/** The tests' own support: the seed, the note under failures, the CI skip policy, the warnings. */
class TestSupportTest {

  @Test
  void theSeedIsFixedUnlessGiven() {
    assertEquals(TestSeed.FIXED, TestSeed.parse(null));
    assertEquals(TestSeed.FIXED, TestSeed.parse(" "));
    assertEquals(-42L, TestSeed.parse(" -42 "));
    assertNotEquals(TestSeed.parse("random"), TestSeed.parse("random"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> TestSeed.parse("seven"));
    assertEquals("mosaic.test.seed: expected a long or 'random', got 'seven'", e.getMessage());
  }

  @Test
  void mixedSeedsAreRepeatableAndDistinct() {
    assertEquals(TestSeed.mix(7, 1, 2), TestSeed.mix(7, 1, 2));
    long[] seeds = {TestSeed.mix(7, 1, 2), TestSeed.mix(7, 2, 1), TestSeed.mix(8, 1, 2),
        TestSeed.mix(7, 1), TestSeed.mix(7)};
    assertEquals(seeds.length, Arrays.stream(seeds).distinct().count(), Arrays.toString(seeds));
  }

  @Test
  void failuresCarryTheSeedOnceAndSkipsDoNot() {
    AssertionError failure = new AssertionError("boom");
    assertSame(failure, SeedOnFailure.withSeed(SeedOnFailure.withSeed(failure)));
    assertEquals(1, failure.getSuppressed().length);
    assertEquals(TestSeed.replayHint(), failure.getSuppressed()[0].getMessage());
    assertTrue(TestSeed.replayHint().contains("-Dmosaic.test.seed=" + TestSeed.get()));
    TestAbortedException skip = new TestAbortedException("no GPU");
    assertEquals(0, SeedOnFailure.withSeed(skip).getSuppressed().length);
  }

  @Test
  void mosaicWarningsReachTheConsoleAFewPerClassAndLogger() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MosaicWarnings.Echo echo =
        new MosaicWarnings.Echo(new PrintStream(bytes, true, StandardCharsets.UTF_8));
    echo.startClass("SomeTest");
    for (int i = 0; i < 5; i++) {
      LogRecord r = new LogRecord(Level.WARNING, "dropped {0}");
      r.setLoggerName("dev.mosaic.spark.comm.DropLog");
      r.setParameters(new Object[] {i});
      echo.publish(r);
    }
    LogRecord info = new LogRecord(Level.INFO, "chose a kernel");
    info.setLoggerName("dev.mosaic.kernels.simd.VectorizationProvider");
    echo.publish(info);
    LogRecord severe = new LogRecord(Level.SEVERE, "aborted");
    severe.setLoggerName("dev.mosaic.spark.comm.Mesh");
    severe.setThrown(new IllegalStateException("injected"));
    echo.publish(severe);
    echo.startClass("");
    assertEquals(List.of("[mosaic] WARNING DropLog: dropped 0",
        "[mosaic] WARNING DropLog: dropped 1", "[mosaic] WARNING DropLog: dropped 2",
        "[mosaic] SEVERE Mesh: aborted (java.lang.IllegalStateException: injected)",
        "[mosaic] ... 2 more from DropLog in SomeTest (all in its -output.txt)"),
        bytes.toString(StandardCharsets.UTF_8).lines().toList());
  }

  @Test
  void onCiOnlyTheHardwareMaySkip() {
    // The reasons the tests give today, as they give them.
    for (String hardware : new String[] {"no usable GPU: no CUDA driver", "a GPU is usable here",
        "this machine has a GPU", "real GPUs here: the fake discovery would lie",
        "NCCL not usable: libnccl.so.2", "NCCL between ranks needs 2+ GPUs, this machine has 1"}) {
      assertTrue(NoSkipsOnCi.allowedOnCi(hardware, false), hardware);
    }
    for (String tool : new String[] {
        "no C++ compiler (g++, c++, clang++) on the PATH to build the host emulation of the CUDA"
            + " kernels",
        "nvcc is not on this machine: the build made no fatbin", "built without nvcc: no fatbin",
        "the jar was built without nvcc", "no Python interpreter (python3): error=2",
        "skipped by the script: safetensors/numpy not importable", "needs /proc/self/fd",
        "jupyter nbconvert is not installed: notebooks not executed", "", null}) {
      assertFalse(NoSkipsOnCi.allowedOnCi(tool, false), tool);
    }
    assertTrue(NoSkipsOnCi.allowedOnCi("the jar was built without nvcc", true));
    assertTrue(NoSkipsOnCi.allowedOnCi("-Dmosaic.cuda.skip=true: nvcc was not run", true));
    assertFalse(NoSkipsOnCi.allowedOnCi("no Python interpreter (python3)", true));
  }
}
