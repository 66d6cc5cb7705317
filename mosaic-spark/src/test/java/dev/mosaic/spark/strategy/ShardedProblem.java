package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;

/**
 * One attention problem cut into the shards of a {@link ShardLayout}, the setup the ring tests
 * share (host ring over TCP, device ring over fake NCCL): full q/k/v, the double-precision
 * reference output, each rank's rows, and the ranks' outputs gathered back into sequence order.
 */
public final class ShardedProblem {
  private final ShardLayout layout;
  private final Tensor q;
  private final Tensor k;
  private final Tensor v;
  private final Tensor expected;
  private final Tensor actual;

  private ShardedProblem(ShardLayout layout, Tensor q, Tensor k, Tensor v, float scale,
      AttentionMask mask) {
    this.layout = layout;
    this.q = q;
    this.k = k;
    this.v = v;
    int[] s = q.shape();
    this.expected = Tensor.zeros(s);
    this.actual = Tensor.zeros(s);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        mask, BlockView.of(expected), new float[s[0] * s[1] * s[2]]);
  }

  /** Standard normal q, k, v of shape (batch, layout.total(), heads, d). */
  public static ShardedProblem random(Random rnd, ShardLayout layout, int batch, int heads, int d,
      float scale, AttentionMask mask) {
    return random(rnd, layout, batch, heads, d, scale, mask, UnaryOperator.identity());
  }

  /** As {@link #random}, each input passed through {@code storage} (e.g. rounded to fp16). */
  public static ShardedProblem random(Random rnd, ShardLayout layout, int batch, int heads, int d,
      float scale, AttentionMask mask, UnaryOperator<Tensor> storage) {
    int n = (int) layout.total();
    Tensor q = storage.apply(Tensor.randn(rnd, 1f, batch, n, heads, d));
    Tensor k = storage.apply(Tensor.randn(rnd, 1f, batch, n, heads, d));
    Tensor v = storage.apply(Tensor.randn(rnd, 1f, batch, n, heads, d));
    return new ShardedProblem(layout, q, k, v, scale, mask);
  }

  public BlockView q(int rank) {
    return BlockView.of(rows(q, layout.segments(rank)));
  }

  public BlockView k(int rank) {
    return BlockView.of(rows(k, layout.segments(rank)));
  }

  public BlockView v(int rank) {
    return BlockView.of(rows(v, layout.segments(rank)));
  }

  /** A zero output for rank {@code rank}'s queries. */
  public Tensor output(int rank) {
    int[] s = q.shape();
    return Tensor.zeros(s[0], layout.size(rank), s[2], s[3]);
  }

  /** Puts rank {@code rank}'s output where its rows sit in the sequence (thread-safe). */
  public synchronized void gather(int rank, Tensor out) {
    scatter(out, layout.segments(rank), actual);
  }

  /** Relative error of the gathered outputs against the reference. */
  public synchronized double relativeError() {
    return RelativeError.of(actual.data(), expected.data());
  }

  /** Rows of the segments along dim 1 of a (batch, n, heads, d) tensor. */
  public static Tensor rows(Tensor t, List<ShardLayout.Segment> segs) {
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

  /** The inverse of {@link #rows}: a shard's rows back to their places in {@code full}. */
  public static void scatter(Tensor shard, List<ShardLayout.Segment> segs, Tensor full) {
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
