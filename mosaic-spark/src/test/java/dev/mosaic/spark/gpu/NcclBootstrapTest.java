package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.spark.gpu.NcclBootstrap.Hello;
import dev.mosaic.test.TestSeed;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class NcclBootstrapTest {

  private static byte[] id() {
    byte[] id = new byte[NcclIds.BYTES];
    TestSeed.random().nextBytes(id);
    return id;
  }

  @Test
  void helloSurvivesTheRoundTripWithAnyText() {
    Hello h = new Hello(3, "node-7.example.com", "GPU-a1b2|c", "stage 2 partition 3 attempt 1",
        NcclIds.encode(id()), "bad . thing\nwith a newline");
    assertEquals(h, NcclBootstrap.decode(NcclBootstrap.encode(h)));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> NcclBootstrap.decode("ok 10.0.0.1:4000"));
    assertTrue(e.getMessage().startsWith("not a Mosaic NCCL bootstrap message"), e.getMessage());
  }

  @Test
  void everyRankLearnsRankZerosId() {
    byte[] id = id();
    String[] all = {
        NcclBootstrap.encode(new Hello(0, "a", "0", "t0", NcclIds.encode(id), "")),
        NcclBootstrap.encode(new Hello(1, "a", "1", "t1", "", "")),
        NcclBootstrap.encode(new Hello(2, "b", "0", "t2", "", ""))};
    NcclBootstrap.Plan plan = NcclBootstrap.plan(all, 3);
    assertArrayEquals(id, plan.ncclId());
    assertEquals(3, plan.tasks().size());
  }

  @Test
  void oneTasksErrorStopsEveryRankNamingIt() {
    String[] all = {
        NcclBootstrap.encode(new Hello(0, "a", "0", "t0", NcclIds.encode(id()), "")),
        NcclBootstrap.encode(new Hello(1, "b", "?", "t1", "", "this task has no GPU"))};
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> NcclBootstrap.plan(all, 2));
    assertEquals("NCCL communicator not started: rank 1 (t1) on b: this task has no GPU",
        e.getMessage());
  }

  @Test
  void duplicateGpusAreRefusedBeforeNcclStarts() {
    String[] all = {
        NcclBootstrap.encode(new Hello(0, "a", "0", "partition 0", NcclIds.encode(id()), "")),
        NcclBootstrap.encode(new Hello(1, "a", "0", "partition 1", "", ""))};
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> NcclBootstrap.plan(all, 2));
    assertTrue(e.getMessage().startsWith("rank 0 (partition 0) and rank 1 (partition 1) are both"
        + " bound to GPU 0 on host a"), e.getMessage());
  }

  /**
   * Two "tasks" (threads sharing an all-gather) on a machine without a usable GPU: both fail
   * with the reason, neither waits for the other.
   */
  @Test
  void withoutAGpuEveryRankFailsFastWithTheReason() throws Exception {
    Assumptions.assumeFalse(Gpu.available(), "this machine has a GPU: see NcclCommunicatorGpuTest");
    ThreadAllGather gather = new ThreadAllGather(2, Duration.ofSeconds(30));
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<String>> results = new ArrayList<>();
      for (int r = 0; r < 2; r++) {
        int rank = r;
        results.add(pool.submit(() -> {
          IllegalStateException e = assertThrows(IllegalStateException.class,
              () -> NcclRendezvous.connect(rank, 2, "localhost", "task " + rank,
                  () -> new GpuBinding.Binding(rank, Integer.toString(rank), "test"),
                  gather.rank(rank), null, Duration.ofSeconds(30)));
          return e.getMessage();
        }));
      }
      for (Future<String> f : results) {
        String m = f.get(60, TimeUnit.SECONDS);
        assertTrue(m.startsWith("NCCL communicator not started: rank 0 (task 0) on localhost: no"
            + " usable GPU: "), m);
        assertTrue(m.contains("rank 1 (task 1)"), m);
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
