package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardedProblem;
import dev.mosaic.spark.strategy.ShardLayout;
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
 * Cross-attention through the device-resident ring ({@link DeviceRingBlocks} on {@link FakeCuda}
 * with {@link FakeDeviceKernels}): queries and keys of different lengths and shardings, empty
 * shards on either side. It must equal full attention of the two sequences, upload each rank's q
 * and [K | V] once (nothing for an empty one), and send only the key shards over NCCL.
 * Tolerance as in {@code DeviceRingBlocksTest}: fp32 sums of ≤ 30 terms, 1e-5 in norm.
 */
@Timeout(120)
class DeviceCrossRingTest {
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(2, ShardLayout.contiguous(30, 2), ShardLayout.contiguous(11, 2),
            AttentionMask.NONE),
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 0, 9}),
            ShardLayout.contiguous(new int[] {0, 12, 7}), AttentionMask.causalMask()),
        Arguments.of(3, ShardLayout.contiguous(new int[] {0, 8, 0}),
            ShardLayout.contiguous(new int[] {6, 0, 5}), AttentionMask.NONE));
  }

  @ParameterizedTest(name = "p={0} q {1} kv {2} {3}")
  @MethodSource("cases")
  void deviceCrossRingEqualsFullAttention(int p, ShardLayout queries, ShardLayout keys,
      AttentionMask mask) throws Exception {
    int batch = 2;
    int heads = 3;
    int d = 8;
    int nq = (int) queries.total();
    int nk = (int) keys.total();
    Tensor q = Tensor.randn(rnd, 1f, batch, nq, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, nk, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, nk, heads, d);
    float scale = 0.35f;
    Tensor expected = Tensor.zeros(batch, nq, heads, d);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        mask, BlockView.of(expected), new float[batch * nq * heads]);

    FakeCuda cuda = new FakeCuda();
    Tensor actual = Tensor.zeros(batch, nq, heads, d);
    long[] sent = new long[p];
    FakeRanks.run(cuda, p, comm -> {
      int r = comm.rank();
      long compute = cuda.createStream();
      FakeDeviceKernels kernels = new FakeDeviceKernels(cuda, comm.device(), compute);
      assertTrue(DeviceRingBlocks.factory(comm, kernels).isPresent());
      Tensor out = Tensor.zeros(batch, queries.size(r), heads, d);
      new RingStrategy(comm, queries, keys, kernels).attend(
          BlockView.of(ShardedProblem.rows(q, queries.segments(r))),
          BlockView.of(ShardedProblem.rows(k, keys.segments(r))),
          BlockView.of(ShardedProblem.rows(v, keys.segments(r))), scale, mask,
          BlockView.of(out));
      synchronized (actual) {
        ShardedProblem.scatter(out, queries.segments(r), actual);
      }
      sent[r] = comm.bytesSent();
      cuda.destroyStream(compute);
    });
    double err = RelativeError.of(actual.data(), expected.data());
    assertTrue(err < 1e-5, "relative error " + err);
    assertEquals(List.of(), cuda.violations());
    long withQueries = IntStream.range(0, p).filter(r -> queries.size(r) > 0).count();
    long withKeys = IntStream.range(0, p).filter(r -> keys.size(r) > 0).count();
    assertEquals(withQueries + withKeys, cuda.calls("copyHostToDevice"), "host-to-device copies");
    assertEquals(withQueries, cuda.calls("copyDeviceToHost"), "device-to-host copies");
    for (int r = 0; r < p; r++) {
      assertEquals(RingStrategy.bytesSent(keys, r, batch, heads, d), sent[r],
          "bytes sent by rank " + r);
    }
    assertEquals(0, cuda.liveEvents());
    assertEquals(0, cuda.livePinnedBytes());
  }
}
