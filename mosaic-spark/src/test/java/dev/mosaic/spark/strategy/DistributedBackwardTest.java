package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.ReferenceAttentionBackward;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The ring and Ulysses backward over ranks-as-threads with real TCP communicators, against the
 * double-precision {@link ReferenceAttentionBackward} of the whole sequence.
 *
 * <p>Tolerance: every gradient element is an fp32 sum of at most n ≤ 203 products of O(1) terms,
 * split differently over blocks than in the reference; its error is bounded by about
 * {@code n·ε·Σ|terms| ≈ 203 · 6e-8 · (a few)}, a few 1e-5 at worst and far less in norm (errors
 * of random sign add like √n). 1e-4 relative in norm leaves margin without hiding a missed block
 * (that costs an O(1/p) share of the gradient).
 */
@Timeout(180)
class DistributedBackwardTest {
  private static final double TOLERANCE = 1e-4;
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    AttentionMask none = AttentionMask.NONE;
    AttentionMask causal = AttentionMask.causalMask();
    List<Arguments> all = new ArrayList<>();
    for (String backend : List.of(Backends.RING, Backends.ULYSSES)) {
      all.add(Arguments.of(backend, 1, ShardLayout.contiguous(40, 1), none));
      all.add(Arguments.of(backend, 2, ShardLayout.contiguous(103, 2), none));
      all.add(Arguments.of(backend, 3, ShardLayout.contiguous(new int[] {5, 70, 28}), none));
      all.add(Arguments.of(backend, 4, ShardLayout.contiguous(130, 4),
          AttentionMask.keyLimit(77)));
      all.add(Arguments.of(backend, 2, ShardLayout.zigzag(101, 2), causal));
      all.add(Arguments.of(backend, 4, ShardLayout.zigzag(203, 4), causal));
      all.add(Arguments.of(backend, 3, ShardLayout.contiguous(new int[] {50, 0, 47}), causal));
      all.add(Arguments.of(backend, 3, ShardLayout.zigzag(90, 3),
          new AttentionMask(true, 0, 0, 41)));
      all.add(Arguments.of(backend, 2, ShardLayout.contiguous(64, 2),
          AttentionMask.keyLimit(0)));
    }
    return all.stream();
  }

  @ParameterizedTest(name = "{0} p={1} {2} {3}")
  @MethodSource("cases")
  void gradientsEqualTheReference(String backend, int p, ShardLayout layout, AttentionMask mask)
      throws Exception {
    int batch = 2;
    int heads = 12; // divisible by every p here, for Ulysses
    int d = 8;
    int n = (int) layout.total();
    float scale = 0.3f;
    Tensor[] in = new Tensor[4]; // q, k, v, dOut
    for (int i = 0; i < in.length; i++) {
      in[i] = Tensor.randn(rnd, 1f, batch, n, heads, d);
    }
    Tensor[] expected = new Tensor[4]; // out, dq, dk, dv
    for (int i = 0; i < expected.length; i++) {
      expected[i] = Tensor.zeros(batch, n, heads, d);
    }
    new ReferenceAttention().forward(view(in[0]), view(in[1]), view(in[2]), scale, mask,
        view(expected[0]), new float[batch * n * heads]);
    ReferenceAttentionBackward.backward(view(in[0]), view(in[1]), view(in[2]), view(in[3]),
        scale, mask, view(expected[1]), view(expected[2]), view(expected[3]));

    List<Tensor[]> shards = ThreadRanks.run(p, comm -> {
      List<ShardLayout.Segment> mine = layout.segments(comm.rank());
      Tensor[] x = new Tensor[4];
      for (int i = 0; i < 4; i++) {
        x[i] = RingStrategyTest.rows(in[i], mine);
      }
      Tensor[] got = new Tensor[4];
      for (int i = 0; i < 4; i++) {
        got[i] = Tensor.zeros(x[0].shape());
      }
      float[] lse = new float[batch * x[0].dim(1) * heads];
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy s = strategy(backend, comm, layout, kernel)) {
        s.attend(view(x[0]), view(x[1]), view(x[2]), scale, mask, view(got[0]), lse);
        long before = comm.bytesSent();
        s.attendBackward(view(x[0]), view(x[1]), view(x[2]), view(got[0]), lse, view(x[3]),
            scale, mask, view(got[1]), view(got[2]), view(got[3]));
        if (backend.equals(Backends.RING)) {
          assertEquals(RingStrategy.backwardBytesSent(layout, comm.rank(), batch, heads, d),
              comm.bytesSent() - before, "bytes rank " + comm.rank() + " sent");
        }
      }
      return got;
    });
    String[] names = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
      Tensor actual = Tensor.zeros(batch, n, heads, d);
      for (int r = 0; r < p; r++) {
        RingStrategyTest.scatter(shards.get(r)[i], layout.segments(r), actual);
      }
      double err = RelativeError.of(actual, expected[i]);
      assertTrue(err < TOLERANCE, backend + " " + names[i] + ": relative error " + err + "; "
          + TestSeed.replayHint());
    }
  }

  @Test
  void strategiesWithoutABackwardNameTheOnesWithOne() throws Exception {
    List<String> msgs = ThreadRanks.run(4, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy mesh = new Mesh2dStrategy(comm, ShardLayout.contiguous(8, 4), 2, 2, kernel)) {
        BlockView x = view(Tensor.zeros(1, 2, 2, 4));
        return assertThrows(UnsupportedOperationException.class,
            () -> mesh.attendBackward(x, x, x, x, new float[4], x, 1f, AttentionMask.NONE, x, x,
                x)).getMessage();
      }
    });
    assertEquals("strategy mesh2d(2x2) has no backward pass; backends with one: local, ring,"
        + " ulysses", msgs.get(0));
  }

  static Strategy strategy(String backend, Communicator comm, ShardLayout layout,
      AttentionKernel kernel) {
    return backend.equals(Backends.RING) ? new RingStrategy(comm, layout, kernel)
        : new UlyssesStrategy(comm, layout, kernel);
  }

  private static BlockView view(Tensor t) {
    return BlockView.of(t);
  }
}
