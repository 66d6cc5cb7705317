package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.ShardedProblem;
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
    float scale = 0.35f;
    ShardedProblem problem = ShardedProblem.random(rnd, layout, batch, heads, d, scale, mask);
    FakeCuda cuda = new FakeCuda();
    long[][] perRank = new long[p][];
    FakeRanks.run(cuda, p, comm -> {
      int r = comm.rank();
      long compute = cuda.createStream();
      FakeDeviceKernels kernels = new FakeDeviceKernels(cuda, comm.device(), compute);
      assertTrue(DeviceRingBlocks.factory(comm, kernels).isPresent());
      Tensor out = problem.output(r);
      new RingStrategy(comm, layout, kernels).attend(problem.q(r), problem.k(r), problem.v(r),
          scale, mask, BlockView.of(out));
      problem.gather(r, out);
      perRank[r] = new long[] {kernels.forwards.get(), comm.bytesSent()};
      cuda.destroyStream(compute);
    });
    double err = problem.relativeError();
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
   * fp16 and bf16 storage: the host uploads fp32 once (q and [K | V], two copies per rank) and
   * convert.cu rounds them on the device (two launches per rank), then K/V travel as 2-byte
   * elements (NCCL counts bytes; V sits half a block in). The inputs are not rounded on the host,
   * so the ring can only equal full attention of the rounded inputs if the device rounds them.
   */
  @ParameterizedTest(name = "{0}")
  @org.junit.jupiter.params.provider.EnumSource(value = GpuDtype.class, names = {"FP16", "BF16"})
  void halfPrecisionIsConvertedOnTheDeviceAndTravelsAsTwoByteElements(GpuDtype dtype)
      throws Exception {
    int p = 3;
    ShardLayout layout = ShardLayout.zigzag(61, p);
    AttentionMask mask = AttentionMask.causalMask();
    int batch = 2;
    int heads = 2;
    int d = 12;
    float scale = 0.3f;
    // Same seed twice: the reference sees the rounded inputs, the ring the fp32 ones.
    long seed = rnd.nextLong();
    ShardedProblem rounded = ShardedProblem.random(new Random(seed), layout, batch, heads, d,
        scale, mask, t -> rounded(t, dtype));
    ShardedProblem raw = ShardedProblem.random(new Random(seed), layout, batch, heads, d, scale,
        mask);
    FakeCuda cuda = new FakeCuda();
    long[] sent = new long[p];
    long[] conversions = new long[p];
    FakeRanks.run(cuda, p, comm -> {
      int r = comm.rank();
      long compute = cuda.createStream();
      FakeDeviceKernels kernels = new FakeDeviceKernels(cuda, comm.device(), compute, dtype);
      Tensor out = raw.output(r);
      new RingStrategy(comm, layout, kernels).attend(raw.q(r), raw.k(r), raw.v(r), scale, mask,
          BlockView.of(out));
      rounded.gather(r, out);
      sent[r] = comm.bytesSent();
      conversions[r] = kernels.conversions.get();
      cuda.destroyStream(compute);
    });
    double err = rounded.relativeError();
    assertTrue(err < 1e-5, "relative error " + err); // the device-rounded inputs are exact
    assertEquals(List.of(), cuda.violations());
    long elements = 0;
    for (int r = 0; r < p; r++) {
      assertEquals(RingStrategy.bytesSent(layout, r, batch, heads, d) / 2, sent[r]);
      assertEquals(2, conversions[r], "convert.cu launches of rank " + r + " (q, [K | V])");
      elements += 3L * batch * layout.size(r) * heads * d;
    }
    assertEquals(2L * p, cuda.calls("copyHostToDevice"));
    assertEquals(4 * elements, cuda.bytes("copyHostToDevice"), "fp32 uploaded, once");
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
}
