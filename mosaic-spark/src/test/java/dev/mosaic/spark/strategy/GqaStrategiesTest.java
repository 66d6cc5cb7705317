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
 * Grouped-query attention (G K/V heads for H query heads) through the ring and Ulysses, forward
 * and backward, over ranks-as-threads with real TCP communicators, against the double reference
 * of the whole sequence; and the bytes each rank sends: the ring moves only the G K/V heads (H/G
 * times less than MHA), Ulysses replicates K/V heads when there are fewer than ranks.
 *
 * <p>Tolerance as in {@link DistributedBackwardTest}: each element is an fp32 sum of at most
 * group·n ≤ 6·103 products of O(1) terms, split over blocks differently than in the reference;
 * errors of random sign add like √terms, about 1e-5 in norm. 1e-4 leaves margin without hiding a
 * missed block or a wrong K/V head (an O(1) share of the result).
 */
@Timeout(180)
class GqaStrategiesTest {
  private static final double TOLERANCE = 1e-4;
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    AttentionMask none = AttentionMask.NONE;
    AttentionMask causal = AttentionMask.causalMask();
    return Stream.of(
        Arguments.of(Backends.RING, 1, ShardLayout.contiguous(40, 1), causal, 6, 2),
        Arguments.of(Backends.RING, 3, ShardLayout.contiguous(101, 3), none, 6, 2),
        Arguments.of(Backends.RING, 2, ShardLayout.zigzag(97, 2), causal, 4, 1),
        Arguments.of(Backends.RING, 4, ShardLayout.contiguous(new int[] {0, 33, 9, 20}),
            AttentionMask.keyLimit(40), 6, 3),
        // p divides G: each rank gets G/p K/V heads
        Arguments.of(Backends.ULYSSES, 2, ShardLayout.contiguous(103, 2), none, 6, 2),
        Arguments.of(Backends.ULYSSES, 4, ShardLayout.contiguous(64, 4),
            AttentionMask.keyLimit(41), 8, 4),
        // fewer K/V heads than ranks: each K/V head replicated on p/G ranks
        Arguments.of(Backends.ULYSSES, 4, ShardLayout.zigzag(90, 4), causal, 8, 2),
        Arguments.of(Backends.ULYSSES, 3, ShardLayout.contiguous(new int[] {5, 70, 28}), causal,
            6, 1));
  }

  @ParameterizedTest(name = "{0} p={1} {2} {3} H={4} G={5}")
  @MethodSource("cases")
  void equalsTheReferenceAndSendsOnlyTheKeyValueHeads(String backend, int p, ShardLayout layout,
      AttentionMask mask, int heads, int kvHeads) throws Exception {
    int batch = 2;
    int d = 8;
    int n = (int) layout.total();
    float scale = 0.3f;
    Tensor q = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, n, kvHeads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, n, kvHeads, d);
    Tensor dOut = Tensor.randn(rnd, 1f, batch, n, heads, d);
    Tensor[] expected = {Tensor.zeros(batch, n, heads, d), Tensor.zeros(batch, n, heads, d),
        Tensor.zeros(batch, n, kvHeads, d), Tensor.zeros(batch, n, kvHeads, d)};
    new ReferenceAttention().forward(view(q), view(k), view(v), scale, mask, view(expected[0]),
        new float[batch * n * heads]);
    ReferenceAttentionBackward.backward(view(q), view(k), view(v), view(dOut), scale, mask,
        view(expected[1]), view(expected[2]), view(expected[3]));

    List<Tensor[]> shards = ThreadRanks.run(p, comm -> {
      int rank = comm.rank();
      List<ShardLayout.Segment> mine = layout.segments(rank);
      Tensor[] x = {RingStrategyTest.rows(q, mine), RingStrategyTest.rows(k, mine),
          RingStrategyTest.rows(v, mine), RingStrategyTest.rows(dOut, mine)};
      Tensor[] got = {Tensor.zeros(x[0].shape()), Tensor.zeros(x[0].shape()),
          Tensor.zeros(x[1].shape()), Tensor.zeros(x[1].shape())};
      float[] lse = new float[batch * x[0].dim(1) * heads];
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy s = DistributedBackwardTest.strategy(backend, comm, layout, kernel)) {
        long before = comm.bytesSent();
        s.attend(view(x[0]), view(x[1]), view(x[2]), scale, mask, view(got[0]));
        long forward = comm.bytesSent() - before; // what bytesSent documents: no LSE asked for
        s.attend(view(x[0]), view(x[1]), view(x[2]), scale, mask, view(got[0]), lse);
        before = comm.bytesSent();
        s.attendBackward(view(x[0]), view(x[1]), view(x[2]), view(got[0]), lse, view(x[3]),
            scale, mask, view(got[1]), view(got[2]), view(got[3]));
        long backward = comm.bytesSent() - before;
        if (backend.equals(Backends.RING)) {
          long bytes = RingStrategy.bytesSent(layout, rank, batch, kvHeads, d);
          assertEquals(bytes, forward, "forward bytes rank " + rank + " sent");
          assertEquals(RingStrategy.bytesSent(layout, rank, batch, heads, d) / (heads / kvHeads),
              bytes, "the ring's traffic is MHA's divided by H/G");
          assertEquals(RingStrategy.backwardBytesSent(layout, rank, batch, kvHeads, d), backward,
              "backward bytes rank " + rank + " sent");
        } else {
          assertEquals(UlyssesStrategy.bytesSent(layout, rank, batch, heads, kvHeads, d),
              forward, "forward bytes rank " + rank + " sent");
        }
      }
      return got;
    });
    String[] names = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
      Tensor actual = Tensor.zeros(expected[i].shape());
      for (int r = 0; r < p; r++) {
        RingStrategyTest.scatter(shards.get(r)[i], layout.segments(r), actual);
      }
      double err = RelativeError.of(actual, expected[i]);
      assertTrue(err < TOLERANCE, backend + " " + names[i] + ": relative error " + err + "; "
          + TestSeed.replayHint());
    }
  }

  @Test
  void hierarchicalRingMovesTheKeyValueHeadsOnly() throws Exception {
    int p = 4;
    int batch = 2;
    int heads = 6;
    int kvHeads = 2;
    int d = 8;
    ShardLayout layout = ShardLayout.zigzag(83, p);
    AttentionMask mask = AttentionMask.causalMask();
    Tensor q = Tensor.randn(rnd, 1f, batch, 83, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, batch, 83, kvHeads, d);
    Tensor v = Tensor.randn(rnd, 1f, batch, 83, kvHeads, d);
    Tensor expected = Tensor.zeros(batch, 83, heads, d);
    new ReferenceAttention().forward(view(q), view(k), view(v), 0.3f, mask, view(expected),
        new float[batch * 83 * heads]);
    List<Tensor> outs = ThreadRanks.run(p, comm -> {
      List<ShardLayout.Segment> mine = layout.segments(comm.rank());
      Tensor out = Tensor.zeros(batch, layout.size(comm.rank()), heads, d);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy s = new HierarchicalRingStrategy(comm, layout, 2, kernel)) {
        s.attend(view(RingStrategyTest.rows(q, mine)), view(RingStrategyTest.rows(k, mine)),
            view(RingStrategyTest.rows(v, mine)), 0.3f, mask, view(out));
      }
      return out;
    });
    Tensor actual = Tensor.zeros(batch, 83, heads, d);
    for (int r = 0; r < p; r++) {
      RingStrategyTest.scatter(outs.get(r), layout.segments(r), actual);
    }
    double err = RelativeError.of(actual, expected);
    assertTrue(err < TOLERANCE, "hierarchical: relative error " + err + "; "
        + TestSeed.replayHint());
  }

  @Test
  void ulyssesClosedFormWhenKeyValueHeadsAreReplicated() {
    ShardLayout layout = ShardLayout.contiguous(120, 4);
    // H=8 over p=4: 2 query heads a rank; G=2 < p: one K/V head each (replicated twice), so
    // q+k+v cost (2 + 2·1)/(3·2) of MHA's all-to-all and o the same as MHA.
    long mha = UlyssesStrategy.bytesSent(layout, 1, 2, 8, 16);
    long gqa = UlyssesStrategy.bytesSent(layout, 1, 2, 8, 2, 16);
    long qkvMha = 4L * 3 * 2 * 30 * 2 * 16 * 3;
    long o = mha - qkvMha;
    assertEquals(qkvMha * 4 / 6 + o, gqa);
    assertEquals(mha, UlyssesStrategy.bytesSent(layout, 1, 2, 8, 8, 16), "G = H is MHA");
  }

  @Test
  void ulyssesRefusesKeyValueHeadsThatNeitherDivideNorAreDividedByTheRanks() throws Exception {
    ShardLayout layout = ShardLayout.contiguous(8, 2);
    List<String> msgs = ThreadRanks.run(2, comm -> {
      BlockView q = view(Tensor.zeros(1, 4, 12, 4));
      BlockView kv = view(Tensor.zeros(1, 4, 3, 4));
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy s = new UlyssesStrategy(comm, layout, kernel)) {
        return assertThrows(IllegalArgumentException.class,
            () -> s.attend(q, kv, kv, 1f, AttentionMask.NONE, q)).getMessage();
      }
    });
    assertEquals("ulysses over 2 ranks needs the K/V head count (3) to divide 2 or be divisible"
        + " by it; use another number of ranks or another backend", msgs.get(0));
    assertEquals(msgs.get(0), msgs.get(1), "every rank fails alike");
  }

  @Test
  void mesh2dNamesTheBackendsThatRunGroupedQueryAttention() throws Exception {
    List<String> msgs = ThreadRanks.run(4, comm -> {
      BlockView q = view(Tensor.zeros(1, 2, 4, 4));
      BlockView kv = view(Tensor.zeros(1, 2, 2, 4));
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy mesh = new Mesh2dStrategy(comm, ShardLayout.contiguous(8, 4), 2, 2, kernel)) {
        return assertThrows(IllegalArgumentException.class,
            () -> mesh.attend(q, kv, kv, 1f, AttentionMask.NONE, q)).getMessage();
      }
    });
    assertEquals("grouped-query attention (2 K/V heads for 4 query heads) runs with the local,"
        + " ring, hierarchical and ulysses backends, not this one", msgs.get(0));
  }

  private static BlockView view(Tensor t) {
    return BlockView.of(t);
  }
}
