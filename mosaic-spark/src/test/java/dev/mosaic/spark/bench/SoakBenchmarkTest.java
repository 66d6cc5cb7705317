package dev.mosaic.spark.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.runner.TestSpark;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The soak's code keeps working: one cycle of its jobs (every kind once, the two planned failures
 * included) goes as planned and the report ends with a verdict. Ten jobs say nothing about leaks
 * and the shared test session is not the soak's own, so whether the figures stayed flat is not
 * asserted here; {@code bin/mosaic bench soak} is the measurement.
 */
class SoakBenchmarkTest {

  @Test
  @Timeout(240)
  void oneCycleOfSoakJobsGoesAsPlannedAndEndsWithAVerdict() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    int jobs = SoakJobs.Kind.values().length;
    SoakBenchmark.Result r = SoakBenchmark.run(TestSpark.get(), jobs, jobs / 2, 4, out);
    String report = bytes.toString(StandardCharsets.UTF_8);

    assertEquals(java.util.List.of(), r.unexpected(), report);
    assertEquals(2, r.asPlanned(), report);
    assertEquals(2, r.snapshots().size(), report);
    assertNotNull(r.verdict(), report);
    assertEquals(5, r.verdict().lines().size(), report);
    assertTrue(report.contains("Verdict: "), report);
    assertTrue(report.contains(jobs + " of " + jobs + " jobs as planned"), report);
  }

  @Test
  void verdictSaysGrewOnlyBeyondTheSlack() {
    long mib = 1 << 20;
    ResourceSnapshot warm = new ResourceSnapshot(50, 300, 100, 0, 300, 10 * mib, 200 * mib);
    assertTrue(LeakVerdict.compare(warm,
        new ResourceSnapshot(200, 999, 100 + LeakVerdict.THREAD_SLACK, 0,
            300 + LeakVerdict.FD_SLACK, 10 * mib + LeakVerdict.DIRECT_SLACK_BYTES,
            200 * mib + LeakVerdict.HEAP_SLACK_BYTES))
        .flat());
    LeakVerdict oneMosaicThread = LeakVerdict.compare(warm,
        new ResourceSnapshot(200, 301, 101, 1, 300, 10 * mib, 200 * mib));
    assertFalse(oneMosaicThread.flat());
    assertEquals(1, oneMosaicThread.lines().stream().filter(LeakVerdict.Line::grew).count());
    // All live threads are reported, not judged (999 above): Spark's cached pools vary.
    assertFalse(LeakVerdict.compare(warm,
        new ResourceSnapshot(200, 300, 100, 0, 300 + LeakVerdict.FD_SLACK + 1, 10 * mib,
            200 * mib))
        .flat());
    // Heap: 10% of the warm heap when that is more than the 32 MiB floor.
    ResourceSnapshot bigHeap = new ResourceSnapshot(50, 300, 100, 0, 300, 0, 1000 * mib);
    assertTrue(LeakVerdict.compare(bigHeap,
        new ResourceSnapshot(200, 300, 100, 0, 300, 0, 1100 * mib)).flat());
    assertFalse(LeakVerdict.compare(bigHeap,
        new ResourceSnapshot(200, 300, 100, 0, 300, 0, 1101 * mib)).flat());
  }
}
