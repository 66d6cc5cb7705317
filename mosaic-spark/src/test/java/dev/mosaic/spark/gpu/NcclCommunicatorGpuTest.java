package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mosaic.kernels.gpu.Gpu;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.strategy.ShardedProblem;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** NCCL between the GPUs of this machine (one rank per GPU, one thread each). Needs 2+ GPUs. */
class NcclCommunicatorGpuTest {
  private int gpus;

  @BeforeEach
  void requireGpus() {
    Gpu.Report r = Gpu.report();
    Assumptions.assumeTrue(r.usable(), () -> "no usable GPU: " + r.reason());
    Assumptions.assumeTrue(r.nccl().ok(), () -> "NCCL not usable: " + r.nccl().detail());
    gpus = r.devices().size();
    Assumptions.assumeTrue(gpus >= 2, "NCCL between ranks needs 2+ GPUs, this machine has "
        + gpus);
  }

  interface RankBody {
    void run(Communicator comm) throws Exception;
  }

  private void onEveryRank(RankBody body) throws Exception {
    ThreadAllGather gather = new ThreadAllGather(gpus, Duration.ofSeconds(60));
    ExecutorService pool = Executors.newFixedThreadPool(gpus);
    try {
      List<Future<?>> fs = new ArrayList<>();
      for (int r = 0; r < gpus; r++) {
        int rank = r;
        fs.add(pool.submit(() -> {
          try (Communicator comm = NcclRendezvous.connect(rank, gpus, "localhost",
              "test rank " + rank, () -> new GpuBinding.Binding(rank, Integer.toString(rank), "t"),
              gather.rank(rank), null, Duration.ofSeconds(60))) {
            body.run(comm);
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get(120, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void ringSendRecvOverlapsAndDeliversInOrder() throws Exception {
    onEveryRank(comm -> {
      int p = comm.size();
      int me = comm.rank();
      float[] block = new float[1000 + me];
      java.util.Arrays.fill(block, me);
      for (int step = 0; step < 3; step++) {
        int from = (me - 1 + p) % p;
        float[] next = new float[1000 + from];
        Communicator.Transfer t = comm.sendRecv(block, 0, block.length, (me + 1) % p, next, 0,
            next.length, from);
        t.await();
        for (float x : next) {
          assertEquals((float) from, x);
        }
      }
      assertEquals(3L * 4 * block.length, comm.bytesSent());
    });
  }

  @Test
  void collectivesMatchTheirDefinitions() throws Exception {
    onEveryRank(comm -> {
      int p = comm.size();
      int me = comm.rank();
      float[] sum = {me, 1};
      comm.allReduce(sum, Communicator.ReduceOp.SUM);
      assertArrayEquals(new float[] {p * (p - 1) / 2f, p}, sum);
      float[] max = {me};
      comm.allReduce(max, Communicator.ReduceOp.MAX);
      assertEquals(p - 1f, max[0]);
      float[][] all = comm.allGather(new float[me + 1]); // uneven lengths
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
      Communicator half = comm.split(me % 2, me);
      float[] one = {1};
      half.allReduce(one, Communicator.ReduceOp.SUM);
      assertEquals(half.size(), (int) one[0]);
      comm.barrier();
    });
  }

  /**
   * The ring with K/V resident on the GPUs (NCCL between device buffers, merge on the device)
   * against the same ring over host arrays on the CPU kernel.
   */
  @Test
  void deviceResidentRingEqualsTheHostRing() throws Exception {
    deviceRingEqualsHostRing(4, 4);
  }

  /**
   * Grouped-query attention on the GPU ring: [K | V] blocks of G heads travel over NCCL and the
   * CUDA kernel maps each query head to its K/V head; bytes sent are MHA's divided by H/G.
   */
  @Test
  void groupedQueryDeviceRingEqualsTheHostRing() throws Exception {
    deviceRingEqualsHostRing(6, 2);
    deviceRingEqualsHostRing(4, 1);
  }

  private void deviceRingEqualsHostRing(int heads, int kvHeads) throws Exception {
    int batch = 2;
    int d = 64;
    dev.mosaic.spark.strategy.ShardLayout layout =
        dev.mosaic.spark.strategy.ShardLayout.zigzag(301L * gpus, gpus);
    java.util.Random rnd = dev.mosaic.test.TestSeed.random();
    int n = (int) layout.total();
    dev.mosaic.kernels.Tensor q = dev.mosaic.kernels.Tensor.randn(rnd, 1f, batch, n, heads, d);
    dev.mosaic.kernels.Tensor k = dev.mosaic.kernels.Tensor.randn(rnd, 1f, batch, n, kvHeads, d);
    dev.mosaic.kernels.Tensor v = dev.mosaic.kernels.Tensor.randn(rnd, 1f, batch, n, kvHeads, d);
    dev.mosaic.kernels.AttentionMask mask = dev.mosaic.kernels.AttentionMask.causalMask();
    onEveryRank(comm -> {
      int r = comm.rank();
      var qs = dev.mosaic.kernels.BlockView.of(ShardedProblem.rows(q, layout.segments(r)));
      var ks = dev.mosaic.kernels.BlockView.of(ShardedProblem.rows(k, layout.segments(r)));
      var vs = dev.mosaic.kernels.BlockView.of(ShardedProblem.rows(v, layout.segments(r)));
      dev.mosaic.kernels.Tensor onGpu = dev.mosaic.kernels.Tensor.zeros(batch, layout.size(r),
          heads, d);
      dev.mosaic.kernels.Tensor onCpu = dev.mosaic.kernels.Tensor.zeros(batch, layout.size(r),
          heads, d);
      try (dev.mosaic.kernels.gpu.CudaFlashAttention kernel =
          dev.mosaic.kernels.gpu.CudaFlashAttention.open(r,
              dev.mosaic.kernels.gpu.GpuDtype.FP32)) {
        org.junit.jupiter.api.Assertions.assertTrue(
            DeviceRingBlocks.factory(comm, kernel).isPresent(), "device-resident blocks");
        new dev.mosaic.spark.strategy.RingStrategy(comm, layout, kernel).attend(qs, ks, vs,
            0.125f, mask, dev.mosaic.kernels.BlockView.of(onGpu));
      }
      assertEquals(dev.mosaic.spark.strategy.RingStrategy.bytesSent(layout, r, batch, kvHeads, d),
          comm.bytesSent(), "rank " + r + " sends the " + kvHeads + " K/V heads only");
      try (dev.mosaic.kernels.CpuFlashAttention cpu = new dev.mosaic.kernels.CpuFlashAttention(1)) {
        new dev.mosaic.spark.strategy.RingStrategy(comm, layout, cpu).attend(qs, ks, vs, 0.125f,
            mask, dev.mosaic.kernels.BlockView.of(onCpu));
      }
      double err = dev.mosaic.kernels.RelativeError.of(onGpu.data(), onCpu.data());
      org.junit.jupiter.api.Assertions.assertTrue(err < 2e-5, "rank " + r + ": " + err);
    });
  }
}
