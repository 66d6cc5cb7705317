package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.test.TestSeed;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Mesh2d over ranks-as-threads with real TCP communicators, against the double reference. */
@Timeout(60)
class Mesh2dStrategyTest {
  private static final AttentionMask NONE = AttentionMask.NONE;
  private static final AttentionMask CAUSAL = AttentionMask.causalMask();
  private final Random rnd = TestSeed.random();

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(1, 1, ShardLayout.contiguous(40, 1), NONE, 2),
        Arguments.of(1, 2, ShardLayout.contiguous(103, 2), NONE, 2),
        Arguments.of(2, 1, ShardLayout.contiguous(97, 2), CAUSAL, 2),
        Arguments.of(1, 2, ShardLayout.zigzag(101, 2), CAUSAL, 1),
        Arguments.of(2, 2, ShardLayout.contiguous(128, 4), NONE, 2),
        Arguments.of(2, 2, ShardLayout.contiguous(new int[] {5, 70, 0, 28}), NONE, 2),
        Arguments.of(2, 2, ShardLayout.contiguous(new int[] {31, 3, 60, 11}), CAUSAL, 2),
        Arguments.of(2, 2, ShardLayout.zigzag(203, 4), CAUSAL, 2),
        Arguments.of(2, 2, ShardLayout.contiguous(130, 4), AttentionMask.keyLimit(77), 2),
        Arguments.of(2, 2, ShardLayout.contiguous(64, 4), AttentionMask.keyLimit(0), 2),
        Arguments.of(2, 3, ShardLayout.contiguous(150, 6), NONE, 2),
        Arguments.of(2, 3, ShardLayout.contiguous(new int[] {13, 0, 40, 7, 51, 22}), CAUSAL, 2),
        Arguments.of(2, 3, ShardLayout.zigzag(131, 6), new AttentionMask(true, 0, 0, 70), 2),
        Arguments.of(3, 2, ShardLayout.contiguous(new int[] {9, 30, 2, 25, 17, 40}),
            AttentionMask.keyLimit(50), 2));
  }

  @ParameterizedTest(name = "{0}x{1} {2} {3} batch {4}")
  @MethodSource("cases")
  void mesh2dEqualsFullAttentionAndSendsWhatItDocuments(int rows, int cols, ShardLayout layout,
      AttentionMask mask, int batch) throws Exception {
    Problem pr = Problem.random(rnd, batch, (int) layout.total(), 3, 16, mask);
    List<Problem.Result> res = ThreadRanks.run(rows * cols, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Mesh2dStrategy s = new Mesh2dStrategy(comm, layout, rows, cols, kernel)) {
        return pr.attend(s, comm, layout);
      }
    });
    double err = pr.error(res, layout);
    assertTrue(err < 1e-5, "relative error " + err);
    for (int r = 0; r < res.size(); r++) {
      assertEquals(Mesh2dStrategy.bytesSent(layout, rows, cols, r, batch, 3, 16, mask),
          res.get(r).bytes(), "bytes sent by rank " + r);
    }
  }

  /** The closed form for even shards, and that it beats the ring's n·(k+v) per rank. */
  @Test
  void trafficMatchesTheClosedForm() throws Exception {
    int rows = 2;
    int cols = 3;
    int p = rows * cols;
    int n = 180;
    int b = 2;
    int h = 3;
    int d = 16;
    ShardLayout layout = ShardLayout.contiguous(n, p);
    Problem pr = Problem.random(rnd, b, n, h, d, NONE);
    List<Problem.Result> res = ThreadRanks.run(p, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Mesh2dStrategy s = new Mesh2dStrategy(comm, layout, rows, cols, kernel)) {
        return pr.attend(s, comm, layout);
      }
    });
    long formula = 4L * b * h * (n / p)
        * ((cols - 1) * d + 2 * (rows - 1) * d + (cols - 1) * (d + 1));
    long ring = 4L * b * h * 2 * d * (n / p) * (p - 1);
    for (Problem.Result r : res) {
      assertEquals(formula, r.bytes());
      assertTrue(r.bytes() < ring, r.bytes() + " bytes, ring sends " + ring);
    }
    assertTrue(pr.error(res, layout) < 1e-5);
  }

  @Test
  void rejectsAGridThatDoesNotCoverTheRanks() throws Exception {
    ShardLayout layout = ShardLayout.contiguous(10, 4);
    List<String> msgs = ThreadRanks.run(4, comm -> {
      try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
        return assertThrows(IllegalArgumentException.class,
            () -> new Mesh2dStrategy(comm, layout, 3, 2, kernel)).getMessage();
      }
    });
    assertEquals("mesh2d grid 3x2 does not cover 4 ranks: rows·cols must equal the number of"
        + " ranks (e.g. 2x2)", msgs.get(0));
  }

  @Test
  void rejectsAShardOfTheWrongSize() throws Exception {
    ShardLayout layout = ShardLayout.contiguous(10, 2);
    List<String> msgs = ThreadRanks.run(2, comm -> {
      Tensor x = Tensor.zeros(1, 4, 1, 8);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Mesh2dStrategy s = new Mesh2dStrategy(comm, layout, 1, 2, kernel)) {
        return assertThrows(IllegalArgumentException.class, () -> s.attend(BlockView.of(x),
            BlockView.of(x), BlockView.of(x), 1f, NONE, BlockView.of(x))).getMessage();
      }
    });
    assertEquals("rank 0 got 4 rows but its shard holds 5", msgs.get(0));
  }

  @Test
  void squarestGrid() {
    assertEquals(List.of(1, 1), List.of(Mesh2dStrategy.squarestGrid(1)[0],
        Mesh2dStrategy.squarestGrid(1)[1]));
    assertEquals(2, Mesh2dStrategy.squarestGrid(6)[0]);
    assertEquals(4, Mesh2dStrategy.squarestGrid(16)[1]);
    assertEquals(7, Mesh2dStrategy.squarestGrid(7)[1]);
  }

  /**
   * Random q, k, v for the full sequence, the reference output, and per-rank inputs cut out of
   * them. Each rank's q, k and v are strided views into one packed {@code [q | k | v]} row, as the
   * layer hands them over, so the strategies must honour strides.
   */
  static final class Problem {
    static final float SCALE = 0.25f;
    final int batch;
    final int n;
    final int heads;
    final int d;
    final AttentionMask mask;
    final Tensor q;
    final Tensor k;
    final Tensor v;
    final Tensor expected;

    record Result(Tensor out, long bytes) {}

    private Problem(Random rnd, int batch, int n, int heads, int d, AttentionMask mask) {
      this.batch = batch;
      this.n = n;
      this.heads = heads;
      this.d = d;
      this.mask = mask;
      q = Tensor.randn(rnd, 1f, batch, n, heads, d);
      k = Tensor.randn(rnd, 1f, batch, n, heads, d);
      v = Tensor.randn(rnd, 1f, batch, n, heads, d);
      expected = Tensor.zeros(batch, n, heads, d);
      new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), SCALE,
          mask, BlockView.of(expected), new float[batch * n * heads]);
    }

    static Problem random(Random rnd, int batch, int n, int heads, int d, AttentionMask mask) {
      return new Problem(rnd, batch, n, heads, d, mask);
    }

    /** Runs one attend on this rank; returns its output and the bytes attend sent. */
    Result attend(Strategy s, Communicator comm, ShardLayout layout) {
      int rank = comm.rank();
      Tensor[] parts = {q, k, v};
      int local = layout.size(rank);
      int row = heads * d;
      float[] packed = new float[batch * local * 3 * row];
      BlockView[] views = new BlockView[3];
      for (int t = 0; t < 3; t++) {
        int offset = local == 0 ? 0 : t * row; // an empty view must start inside its array
        views[t] = new BlockView(packed, offset, batch, local, heads, d, 3 * row,
            (long) local * 3 * row);
        moveRows(BlockView.of(parts[t]), layout.segments(rank), views[t], true);
      }
      Tensor out = Tensor.zeros(batch, local, heads, d);
      long before = comm.bytesSent();
      s.attend(views[0], views[1], views[2], SCALE, mask, BlockView.of(out));
      return new Result(out, comm.bytesSent() - before);
    }

    double error(List<Result> results, ShardLayout layout) {
      Tensor actual = Tensor.zeros(batch, n, heads, d);
      for (int r = 0; r < results.size(); r++) {
        moveRows(BlockView.of(actual), layout.segments(r), BlockView.of(results.get(r).out()),
            false);
      }
      return relErr(actual.data(), expected.data());
    }

    /** Copies the segments' rows of {@code full} to/from a shard, in the shard's local order. */
    private static void moveRows(BlockView full, List<ShardLayout.Segment> segs, BlockView shard,
        boolean toShard) {
      int local = 0;
      for (ShardLayout.Segment seg : segs) {
        BlockView global = full.rows((int) seg.start(), seg.length());
        BlockView mine = shard.rows(local, seg.length());
        if (toShard) {
          Blocks.copy(global, 0, mine, 0, full.heads());
        } else {
          Blocks.copy(mine, 0, global, 0, full.heads());
        }
        local += seg.length();
      }
    }

    /** ‖a − e‖ / ‖e‖ in double; NaN anywhere fails. */
    static double relErr(float[] a, float[] e) {
      double num = 0;
      double den = 0;
      for (int i = 0; i < a.length; i++) {
        if (Float.isNaN(a[i])) {
          return Double.NaN;
        }
        num += (a[i] - e[i]) * (double) (a[i] - e[i]);
        den += e[i] * (double) e[i];
      }
      return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
    }
  }
}
