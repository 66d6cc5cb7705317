package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The ring with K/V resident on the device: {@link RingStrategy} over {@link NcclCommunicator}s on
 * {@link FakeCuda} with {@link FakeDeviceKernels}. It must equal full attention, and the driver
 * must see what the design promises: per rank two uploads (q and [K | V]) for the whole ring, zero
 * per step, one download of the output, one NCCL send and receive per step, device buffers only.
 */
@Timeout(120)
class DeviceRingBlocksTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(1, ShardLayout.contiguous(40, 1), AttentionMask.NONE),
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 30, 12}), AttentionMask.NONE),
        Arguments.of(4, ShardLayout.zigzag(103, 4), AttentionMask.causalMask()),
        Arguments.of(3, ShardLayout.contiguous(new int[] {20, 0, 17}), AttentionMask.causalMask()),
        Arguments.of(2, ShardLayout.zigzag(50, 2), new AttentionMask(true, 0, 0, 31)));
  }

  @ParameterizedTest(name = "p={0} {1} {2}")
  @MethodSource("cases")
  void deviceRingEqualsFullAttentionAndUploadsKvOnce(int p, ShardLayout layout,
      AttentionMask mask) throws Exception {
    int batch = 2;
    int heads = 3;
    int d = 8;
    int n = (int) layout.total();
    Tensor q = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, n, heads, d);
    float scale = 0.35f;
    Tensor expected = Tensor.zeros(batch, n, heads, d);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        mask, BlockView.of(expected), new float[batch * n * heads]);

    FakeCuda cuda = new FakeCuda();
    Tensor actual = Tensor.zeros(batch, n, heads, d);
    long[][] perRank = new long[p][];
    FakeRanks.run(cuda, p, comm -> {
      int r = comm.rank();
      long compute = cuda.createStream();
      FakeDeviceKernels kernels = new FakeDeviceKernels(cuda, comm.device(), compute);
      assertTrue(DeviceRingBlocks.factory(comm, kernels).isPresent());
      Tensor out = Tensor.zeros(batch, layout.size(r), heads, d);
      new RingStrategy(comm, layout, kernels).attend(BlockView.of(rows(q, layout.segments(r))),
          BlockView.of(rows(k, layout.segments(r))), BlockView.of(rows(v, layout.segments(r))),
          scale, mask, BlockView.of(out));
      synchronized (actual) {
        scatter(out, layout.segments(r), actual);
      }
      perRank[r] = new long[] {kernels.forwards.get(), comm.bytesSent()};
      cuda.destroyStream(compute);
    });
    double err = RelativeError.of(actual.data(), expected.data());
    assertTrue(err < 1e-5, "relative error " + err);
    assertEquals(List.of(), cuda.violations());
    // Uploads: q and [K | V] once per rank (empty shards copy nothing); downloads: the output.
    long ranksWithRows = java.util.stream.IntStream.range(0, p)
        .filter(r -> layout.size(r) > 0).count();
    assertEquals(2 * ranksWithRows, cuda.calls("copyHostToDevice"), "host-to-device copies");
    assertEquals(ranksWithRows, cuda.calls("copyDeviceToHost"), "device-to-host copies");
    assertEquals(nonEmptySends(layout, p), cuda.calls("ncclSend"), "NCCL sends");
    for (int r = 0; r < p; r++) {
      assertEquals(RingStrategy.bytesSent(layout, r, batch, heads, d), perRank[r][1],
          "bytes sent by rank " + r);
    }
    assertEquals(0, cuda.liveEvents());
    assertEquals(0, cuda.livePinnedBytes());
  }

  /**
   * fp16 and bf16 K/V travel as 2-byte elements (NCCL counts bytes; V sits half a block in): the
   * ring equals full attention of the inputs rounded to the storage type, and sends half the
   * bytes of fp32.
   */
  @ParameterizedTest(name = "{0}")
  @org.junit.jupiter.params.provider.EnumSource(value = GpuDtype.class, names = {"FP16", "BF16"})
  void halfPrecisionBlocksTravelAsTwoByteElements(GpuDtype dtype) throws Exception {
    int p = 3;
    ShardLayout layout = ShardLayout.zigzag(61, p);
    AttentionMask mask = AttentionMask.causalMask();
    int batch = 2;
    int heads = 2;
    int d = 12;
    int n = (int) layout.total();
    Tensor q = rounded(Tensor.randn(rnd, 1f, batch, n, heads, d), dtype);
    Tensor k = rounded(Tensor.randn(rnd, 1f, batch, n, heads, d), dtype);
    Tensor v = rounded(Tensor.randn(rnd, 1f, batch, n, heads, d), dtype);
    float scale = 0.3f;
    Tensor expected = Tensor.zeros(batch, n, heads, d);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        mask, BlockView.of(expected), new float[batch * n * heads]);
    FakeCuda cuda = new FakeCuda();
    Tensor actual = Tensor.zeros(batch, n, heads, d);
    long[] sent = new long[p];
    FakeRanks.run(cuda, p, comm -> {
      int r = comm.rank();
      long compute = cuda.createStream();
      FakeDeviceKernels kernels = new FakeDeviceKernels(cuda, comm.device(), compute, dtype);
      Tensor out = Tensor.zeros(batch, layout.size(r), heads, d);
      new RingStrategy(comm, layout, kernels).attend(BlockView.of(rows(q, layout.segments(r))),
          BlockView.of(rows(k, layout.segments(r))), BlockView.of(rows(v, layout.segments(r))),
          scale, mask, BlockView.of(out));
      synchronized (actual) {
        scatter(out, layout.segments(r), actual);
      }
      sent[r] = comm.bytesSent();
      cuda.destroyStream(compute);
    });
    double err = RelativeError.of(actual.data(), expected.data());
    assertTrue(err < 1e-5, "relative error " + err); // inputs exact in the storage type
    assertEquals(List.of(), cuda.violations());
    for (int r = 0; r < p; r++) {
      assertEquals(RingStrategy.bytesSent(layout, r, batch, heads, d) / 2, sent[r]);
    }
    assertEquals(2L * p, cuda.calls("copyHostToDevice"));
  }

  private static Tensor rounded(Tensor t, GpuDtype dtype) {
    float[] x = t.data();
    for (int i = 0; i < x.length; i++) {
      x[i] = dtype.round(x[i]);
    }
    return t;
  }

  /** One send per rank and step but the last, except of empty blocks (zero bytes, skipped). */
  private static long nonEmptySends(ShardLayout layout, int p) {
    long sends = 0;
    for (int r = 0; r < p; r++) {
      for (int s = 0; s < p - 1; s++) {
        if (layout.size(Math.floorMod(r - s, p)) > 0) {
          sends++;
        }
      }
    }
    return sends;
  }

  @Test
  void theCpuKernelOrAnotherCommunicatorKeepsHostArrays() throws Exception {
    FakeRanks.run(2, comm -> {
      try (CpuFlashAttention cpu = new CpuFlashAttention(1)) {
        assertTrue(DeviceRingBlocks.factory(comm, cpu).isEmpty());
      }
      FakeDeviceKernels otherGpu = new FakeDeviceKernels(new FakeCuda(), comm.device() + 1, 0);
      assertTrue(DeviceRingBlocks.factory(comm, otherGpu).isEmpty(), "kernel on another GPU");
    });
  }

  static Tensor rows(Tensor t, List<ShardLayout.Segment> segs) {
    int[] s = t.shape();
    int rowSize = s[2] * s[3];
    int local = segs.stream().mapToInt(ShardLayout.Segment::length).sum();
    Tensor out = Tensor.zeros(s[0], local, s[2], s[3]);
    for (int b = 0; b < s[0]; b++) {
      int pos = 0;
      for (ShardLayout.Segment seg : segs) {
        System.arraycopy(t.data(), (int) ((b * s[1] + seg.start()) * rowSize), out.data(),
            (b * local + pos) * rowSize, seg.length() * rowSize);
        pos += seg.length();
      }
    }
    return out;
  }

  static void scatter(Tensor shard, List<ShardLayout.Segment> segs, Tensor full) {
    int[] s = full.shape();
    int rowSize = s[2] * s[3];
    int local = shard.dim(1);
    for (int b = 0; b < s[0]; b++) {
      int pos = 0;
      for (ShardLayout.Segment seg : segs) {
        System.arraycopy(shard.data(), (b * local + pos) * rowSize, full.data(),
            (int) ((b * s[1] + seg.start()) * rowSize), seg.length() * rowSize);
        pos += seg.length();
      }
    }
  }
}
