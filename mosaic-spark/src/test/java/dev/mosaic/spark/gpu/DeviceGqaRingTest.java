package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.test.RandomQkv;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.ShardedProblem;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Grouped-query attention through the device-resident ring ({@link DeviceRingBlocks} on
 * {@link FakeCuda} with {@link FakeDeviceKernels}): K/V carry G heads, a divisor of the H query
 * heads. It must equal full attention (the double-precision reference maps query head h to K/V
 * head h / (H/G)), and NCCL must move only the G heads: {@code RingStrategy.bytesSent} with G,
 * which is MHA's traffic divided by H/G (halved again for 16-bit storage). Uploads stay one q and
 * one [K | V] per rank. Tolerance as in {@code DeviceRingBlocksTest}: fp32 sums of at most ~100
 * terms, 1e-5 in norm; 16-bit storage is compared with the reference on the rounded inputs, so
 * the same bound holds.
 */
@Timeout(120)
class DeviceGqaRingTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        // p, layout, mask, H, G, storage
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 30, 12}), AttentionMask.NONE, 6, 2,
            GpuDtype.FP32),
        Arguments.of(4, ShardLayout.zigzag(103, 4), AttentionMask.causalMask(), 4, 1,
            GpuDtype.FP32),
        Arguments.of(3, ShardLayout.contiguous(new int[] {20, 0, 17}), AttentionMask.causalMask(),
            6, 3, GpuDtype.FP32),
        Arguments.of(2, ShardLayout.zigzag(61, 2), AttentionMask.causalMask(), 6, 2,
            GpuDtype.BF16),
        Arguments.of(3, ShardLayout.zigzag(50, 3), new AttentionMask(true, 0, 0, 31), 4, 1,
            GpuDtype.FP16));
  }

  @ParameterizedTest(name = "p={0} {1} {2} H={3} G={4} {5}")
  @MethodSource("cases")
  void deviceRingSendsOnlyTheKvHeadsAndEqualsFullAttention(int p, ShardLayout layout,
      AttentionMask mask, int heads, int kvHeads, GpuDtype dtype) throws Exception {
    int batch = 2;
    int d = 8;
    int n = (int) layout.total();
    float scale = 0.35f;
    RandomQkv qkv = RandomQkv.draw(rnd, batch, n, n, heads, kvHeads, d);
    Tensor q = qkv.q();
    Tensor k = qkv.k();
    Tensor v = qkv.v();
    // The ring gets the fp32 inputs and rounds them on the device; the reference the rounded.
    Tensor expected = qkv.rounded(dtype).reference(scale, mask).out();

    FakeCuda cuda = new FakeCuda();
    Tensor actual = Tensor.zeros(batch, n, heads, d);
    long[] sent = new long[p];
    FakeRanks.run(cuda, p, comm -> {
      int r = comm.rank();
      long compute = cuda.createStream();
      FakeDeviceKernels kernels = new FakeDeviceKernels(cuda, comm.device(), compute, dtype);
      assertTrue(DeviceRingBlocks.factory(comm, kernels).isPresent());
      Tensor out = Tensor.zeros(batch, layout.size(r), heads, d);
      new RingStrategy(comm, layout, kernels).attend(
          BlockView.of(ShardedProblem.rows(q, layout.segments(r))),
          BlockView.of(ShardedProblem.rows(k, layout.segments(r))),
          BlockView.of(ShardedProblem.rows(v, layout.segments(r))), scale, mask,
          BlockView.of(out));
      synchronized (actual) {
        ShardedProblem.scatter(out, layout.segments(r), actual);
      }
      sent[r] = comm.bytesSent();
      cuda.destroyStream(compute);
    });
    double err = RelativeError.of(actual.data(), expected.data());
    assertTrue(err < 1e-5, "relative error " + err);
    assertEquals(List.of(), cuda.violations());
    long ranksWithRows = IntStream.range(0, p).filter(r -> layout.size(r) > 0).count();
    assertEquals(2 * ranksWithRows, cuda.calls("copyHostToDevice"), "host-to-device copies");
    assertEquals(ranksWithRows, cuda.calls("copyDeviceToHost"), "device-to-host copies");
    long perElement = 4 / dtype.bytes(); // NCCL counts bytes: 16-bit blocks are half as large
    for (int r = 0; r < p; r++) {
      long gqa = RingStrategy.bytesSent(layout, r, batch, kvHeads, d) / perElement;
      assertEquals(gqa, sent[r], "bytes sent by rank " + r);
      assertEquals(RingStrategy.bytesSent(layout, r, batch, heads, d) / perElement
          / (heads / kvHeads), sent[r], "MHA's traffic divided by H/G, rank " + r);
    }
    assertEquals(0, cuda.liveEvents());
    assertEquals(0, cuda.livePinnedBytes());
  }
}
