package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.ReferenceAttentionBackward;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
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
 * The ring as cross-attention: queries from one sequence, keys/values from another of a different
 * length and sharding (uneven and empty shards on either side), the K/V shards travelling. Ranks
 * are threads with real TCP communicators; the oracle is the double-precision reference over the
 * whole query and key sequences, forward and backward.
 *
 * <p>Tolerance: each output or gradient element is an fp32 sum of at most ~50 products of O(1)
 * terms, split over blocks differently than in the reference: ~50·6e-8·(a few) ≈ 1e-5 at worst,
 * far less in norm. 1e-4 relative in norm leaves margin without hiding a missed or doubled block
 * (that costs an O(1/p) share of the result).
 */
@Timeout(120)
class CrossRingStrategyTest {
  private static final double TOLERANCE = 1e-4;
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    AttentionMask none = AttentionMask.NONE;
    AttentionMask causal = AttentionMask.causalMask();
    return Stream.of(
        Arguments.of(1, ShardLayout.contiguous(23, 1), ShardLayout.contiguous(17, 1), none),
        Arguments.of(2, ShardLayout.contiguous(31, 2), ShardLayout.contiguous(50, 2), none),
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 0, 9}),
            ShardLayout.contiguous(new int[] {0, 12, 7}), none),
        Arguments.of(3, ShardLayout.contiguous(new int[] {5, 0, 9}),
            ShardLayout.contiguous(new int[] {0, 12, 7}), causal),
        Arguments.of(2, ShardLayout.contiguous(40, 2), ShardLayout.contiguous(9, 2), causal),
        Arguments.of(3, ShardLayout.zigzag(30, 3), ShardLayout.contiguous(new int[] {4, 4, 3}),
            causal),
        Arguments.of(3, ShardLayout.contiguous(new int[] {0, 0, 10}),
            ShardLayout.contiguous(new int[] {6, 0, 0}), AttentionMask.keyLimit(4)));
  }

  @ParameterizedTest(name = "p={0} q {1} kv {2} {3}")
  @MethodSource("cases")
  void ringEqualsTheReference(int p, ShardLayout queries, ShardLayout keys, AttentionMask mask)
      throws Exception {
    int batch = 2;
    int heads = 3;
    int d = 8;
    int nq = (int) queries.total();
    int nk = (int) keys.total();
    float scale = 0.3f;
    Tensor q = Tensor.randn(rnd, 1f, batch, nq, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, nk, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, nk, heads, d);
    Tensor dOut = Tensor.randn(rnd, 1f, batch, nq, heads, d);
    Tensor out = Tensor.zeros(batch, nq, heads, d);
    Tensor dq = Tensor.zeros(batch, nq, heads, d);
    Tensor dk = Tensor.zeros(batch, nk, heads, d);
    Tensor dv = Tensor.zeros(batch, nk, heads, d);
    new ReferenceAttention().forward(view(q), view(k), view(v), scale, mask, view(out),
        new float[batch * nq * heads]);
    ReferenceAttentionBackward.backward(view(q), view(k), view(v), view(dOut), scale, mask,
        view(dq), view(dk), view(dv));

    List<Tensor[]> shards = ThreadRanks.run(p, comm -> {
      int r = comm.rank();
      Tensor qs = RingStrategyTest.rows(q, queries.segments(r));
      Tensor ks = RingStrategyTest.rows(k, keys.segments(r));
      Tensor vs = RingStrategyTest.rows(v, keys.segments(r));
      Tensor dOuts = RingStrategyTest.rows(dOut, queries.segments(r));
      Tensor[] got = {Tensor.zeros(qs.shape()), Tensor.zeros(qs.shape()),
          Tensor.zeros(ks.shape()), Tensor.zeros(ks.shape())};
      float[] lse = new float[batch * qs.dim(1) * heads];
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          RingStrategy ring = new RingStrategy(comm, queries, keys, kernel)) {
        long start = comm.bytesSent();
        ring.attend(view(qs), view(ks), view(vs), scale, mask, view(got[0]), lse);
        assertEquals(RingStrategy.bytesSent(keys, r, batch, heads, d), comm.bytesSent() - start,
            "forward bytes rank " + r + " sent: only K/V travel");
        long before = comm.bytesSent();
        ring.attendBackward(view(qs), view(ks), view(vs), view(got[0]), lse, view(dOuts), scale,
            mask, view(got[1]), view(got[2]), view(got[3]));
        assertEquals(RingStrategy.backwardBytesSent(keys, r, batch, heads, d),
            comm.bytesSent() - before, "backward bytes rank " + r + " sent");
      }
      return got;
    });
    Tensor[] expected = {out, dq, dk, dv};
    String[] names = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
      ShardLayout layout = i < 2 ? queries : keys;
      Tensor actual = Tensor.zeros(expected[i].shape());
      for (int r = 0; r < p; r++) {
        RingStrategyTest.scatter(shards.get(r)[i], layout.segments(r), actual);
      }
      double err = RelativeError.of(actual, expected[i]);
      assertTrue(err < TOLERANCE, names[i] + ": relative error " + err + "; "
          + TestSeed.replayHint());
    }
  }

  @Test
  void rejectsAKeyShardOfTheWrongSizeBeforeSendingAnything() throws Exception {
    ShardLayout queries = ShardLayout.contiguous(10, 2);
    ShardLayout keys = ShardLayout.contiguous(new int[] {3, 4});
    List<String> msgs = ThreadRanks.run(2, comm -> {
      Tensor q = Tensor.zeros(1, 5, 1, 8);
      Tensor kv = Tensor.zeros(1, 5, 1, 8);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        return assertThrows(IllegalArgumentException.class,
            () -> new RingStrategy(comm, queries, keys, kernel).attend(view(q), view(kv),
                view(kv), 1f, AttentionMask.NONE, view(q))).getMessage();
      }
    });
    assertEquals("rank 0 got 5 key and 5 value rows but its key/value shard holds 3", msgs.get(0));
    assertEquals("rank 1 got 5 key and 5 value rows but its key/value shard holds 4", msgs.get(1));
  }

  private static BlockView view(Tensor t) {
    return BlockView.of(t);
  }
}
