package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.CudaException;
import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.spark.comm.Communicator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link NcclCommunicator} on {@link FakeCuda}: its data paths, and the four defects a review found
 * (each test here failed before its fix), checked without a GPU by counting what the driver sees.
 */
class NcclCommunicatorSeamTest {

  /** Nothing the communicator created outlives close, and the driver saw no misuse. */
  private static void assertAllReleased(FakeCuda cuda) {
    assertEquals(List.of(), cuda.violations());
    assertEquals(0, cuda.liveEvents(), "events left");
    assertEquals(0, cuda.liveStreams(), "streams left");
    assertEquals(0, cuda.liveContexts(), "contexts left");
    assertEquals(0, cuda.livePinnedBytes(), "pinned host bytes left");
    assertEquals(0, cuda.liveDeviceBytes(), "device bytes left");
    assertEquals(cuda.calls("allocHost"), cuda.calls("freeHost"));
  }

  @Test
  void ringSendRecvAndCollectivesDeliverOnTheFake() throws Exception {
    FakeCuda cuda = FakeRanks.run(3, comm -> {
      int p = comm.size();
      int me = comm.rank();
      float[] block = new float[100 + me];
      java.util.Arrays.fill(block, me);
      for (int step = 0; step < 3; step++) {
        int from = (me - 1 + p) % p;
        float[] next = new float[100 + from];
        comm.sendRecv(block, 0, block.length, (me + 1) % p, next, 0, next.length, from).await();
        for (float x : next) {
          assertEquals((float) from, x);
        }
      }
      assertEquals(3L * 4 * block.length, comm.bytesSent());
      float[] sum = {me, 1};
      comm.allReduce(sum, Communicator.ReduceOp.SUM);
      assertArrayEquals(new float[] {p * (p - 1) / 2f, p}, sum);
      float[][] all = comm.allGather(new float[me + 1]);
      for (int r = 0; r < p; r++) {
        assertEquals(r + 1, all[r].length);
      }
      float[][] send = new float[p][];
      for (int r = 0; r < p; r++) {
        send[r] = new float[] {me * 100 + r};
      }
      float[][] got = comm.allToAll(send);
      for (int r = 0; r < p; r++) {
        assertArrayEquals(new float[] {r * 100 + me}, got[r]);
      }
      comm.barrier();
    });
    assertAllReleased(cuda);
  }

  /** Defect 1: DeviceTransfer.await destroyed its event twice (once in the wait, once after). */
  @Test
  void aDeviceTransferDestroysItsEventOnce() throws Exception {
    FakeCuda cuda = new FakeCuda();
    FakeRanks.run(cuda, 2, comm -> {
      int peer = 1 - comm.rank();
      try (DeviceArena arena = new DeviceArena(cuda.allocator(0), "test")) {
        long send = arena.allocate(4 * 16);
        long recv = arena.allocate(4 * 16);
        long compute = cuda.createStream();
        DeviceTransfer t = comm.sendRecvDevice(send, 16, peer, recv, 16, peer, compute);
        t.streamWait(compute);
        t.await();
        t.await(); // idempotent
        cuda.destroyStream(compute);
      }
    });
    assertAllReleased(cuda);
    assertEquals(cuda.calls("createEvent"), cuda.calls("destroyEvent"));
  }

  /** Defect 2: communicators made by split never freed their pinned staging buffers. */
  @Test
  void splitChildrenFreeTheirPinnedStaging() throws Exception {
    FakeCuda cuda = FakeRanks.run(4, comm -> {
      Communicator half = comm.split(comm.rank() % 2, comm.rank());
      int q = half.size();
      int me = half.rank();
      float[] got = new float[8];
      half.sendRecv(new float[8], 0, 8, (me + 1) % q, got, 0, 8, (me + q - 1) % q).await();
      half.allGather(new float[] {me});
      half.allReduce(new float[] {1}, Communicator.ReduceOp.SUM);
    });
    assertTrue(cuda.calls("allocHost") > 0);
    assertAllReleased(cuda);
  }

  /** Defect 3: cuMemAllocHost could run before the context was made current on the thread. */
  @Test
  void pinnedMemoryIsAllocatedWithTheContextCurrent() throws Exception {
    FakeCuda cuda = FakeRanks.run(2, comm -> {
      // A fresh thread has no current context (e.g. a task hands the communicator to a worker).
      ExecutorService other = Executors.newSingleThreadExecutor();
      try {
        float[][] all = other.submit(() -> comm.allGather(new float[] {comm.rank()}))
            .get(60, TimeUnit.SECONDS);
        assertArrayEquals(new float[] {1}, all[1]);
        float[][] back = other.submit(() -> comm.allToAll(new float[][] {{1}, {2}}))
            .get(60, TimeUnit.SECONDS);
        assertEquals(2, back.length);
      } finally {
        other.shutdownNow();
      }
    });
    assertAllReleased(cuda);
  }

  /** Defect 4: parent and child shared one stream, serialising inner and outer transfers. */
  @Test
  void parentAndChildEachHaveTheirOwnStream() throws Exception {
    FakeCuda cuda = new FakeCuda();
    long[][] seen = new long[4][];
    FakeRanks.run(cuda, 4, comm -> {
      NcclCommunicator half = (NcclCommunicator) comm.split(comm.rank() / 2, comm.rank());
      NcclCommunicator quarter = (NcclCommunicator) half.split(half.rank(), 0);
      half.allReduce(new float[] {1}, Communicator.ReduceOp.SUM);
      comm.allReduce(new float[] {1}, Communicator.ReduceOp.SUM);
      quarter.barrier();
      assertNotEquals(comm.stream(), half.stream());
      assertNotEquals(half.stream(), quarter.stream());
      assertNotEquals(comm.stream(), quarter.stream());
      assertEquals(Set.of(comm.stream()), cuda.streamsOf(comm.handle()));
      assertEquals(Set.of(half.stream()), cuda.streamsOf(half.handle()));
      assertEquals(Set.of(quarter.stream()), cuda.streamsOf(quarter.handle()));
      seen[comm.rank()] = new long[] {comm.stream(), half.stream(), quarter.stream()};
    });
    assertEquals(12, cuda.calls("createStream"));
    assertAllReleased(cuda); // each stream destroyed exactly once
  }

  /**
   * Device transfers are ordered by events both ways: NCCL reads the send buffer only after the
   * compute stream's earlier kernels, and a kernel may read the received buffer only after
   * {@code streamWait} (or a host wait). The fake's race detector flags the read without it.
   */
  @Test
  void aKernelReadingAReceivedBufferMustWaitForTheTransfer() throws Exception {
    FakeCuda cuda = new FakeCuda();
    FakeRanks.run(cuda, 2, comm -> {
      int peer = 1 - comm.rank();
      try (DeviceArena arena = new DeviceArena(cuda.allocator(0), "test")) {
        long send = arena.allocate(4 * 16);
        long recv = arena.allocate(4 * 16);
        long compute = cuda.createStream();
        cuda.launch(compute, "producer", new long[0], new long[] {send});
        DeviceTransfer ordered = comm.sendRecvDevice(send, 16, peer, recv, 16, peer, compute);
        ordered.streamWait(compute);
        cuda.launch(compute, "consumer", new long[] {recv}, new long[0]);
        DeviceTransfer racy = comm.sendRecvDevice(send, 16, peer, recv, 16, peer, compute);
        CudaException e = assertThrows(CudaException.class,
            () -> cuda.launch(compute, "early consumer", new long[] {recv}, new long[0]));
        assertTrue(e.getMessage().startsWith("early consumer: read of device buffer"),
            e.getMessage());
        assertTrue(e.getMessage().contains("races with the write on stream"), e.getMessage());
        ordered.await();
        racy.await();
        cuda.destroyStream(compute);
      }
    });
    assertEquals(2, cuda.violations().size(), cuda.violations().toString());
    for (String v : cuda.violations()) {
      assertTrue(v.startsWith("early consumer"), v);
    }
    assertEquals(0, cuda.liveEvents());
  }
}
