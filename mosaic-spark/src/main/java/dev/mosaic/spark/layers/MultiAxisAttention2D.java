package dev.mosaic.spark.layers;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;

/**
 * Attention over two axes at once: positions along {@code axis1} and {@code axis2} form one
 * sequence of {@code size(axis1)·size(axis2)} positions (axis1 outer, so position
 * {@code i·size(axis2) + j}), every position attends to every other (causal and key bound count
 * in that order), with the semantics of {@link MultiAxisAttention} on the flattened sequence. The
 * attention itself is a {@link MultiAxisAttention}, so any strategy runs it.
 */
public final class MultiAxisAttention2D implements AutoCloseable {
  private final int axis1;
  private final int axis2;
  private final MultiAxisAttention inner;

  /** Seeded weights, local backend. */
  public MultiAxisAttention2D(int embedDim, int numHeads, int axis1, int axis2) {
    this(axis1, axis2, MultiAxisAttention.builder(embedDim, numHeads, -2));
  }

  /**
   * @param attention options of the attention on the flattened sequence (weights, causal,
   *     strategy, threads); its axis is replaced
   */
  public MultiAxisAttention2D(int axis1, int axis2, MultiAxisAttention.Builder attention) {
    this.axis1 = axis1;
    this.axis2 = axis2;
    this.inner = attention.axis(-2).build();
  }

  public MultiAxisAttention attention() {
    return inner;
  }

  public Tensor forward(Tensor x) {
    return forward(x, Long.MAX_VALUE);
  }

  /** As {@link #forward(Tensor)}; flattened positions {@code >= keyLimit} are hidden as keys. */
  public Tensor forward(Tensor x, long keyLimit) {
    Flattened f = Flattened.of(x, axis1, axis2);
    return f.restore(inner.forward(f.tensor(), keyLimit));
  }

  /**
   * As {@link #forward(Tensor, long)}, keeping what {@link #backward} needs (see
   * {@link MultiAxisAttention#forwardForBackward}).
   */
  public Activations forwardForBackward(Tensor x, long keyLimit) {
    Flattened f = Flattened.of(x, axis1, axis2);
    AttentionActivations a = inner.forwardForBackward(f.tensor(), keyLimit);
    return new Activations(f.restore(a.output()), f, a);
  }

  /**
   * Gradients of {@code sum(y·dy)}: dx in x's layout and the four weight gradients under PyTorch's
   * names (see {@link MultiAxisAttention#backward}).
   */
  public Gradients backward(Activations saved, Tensor dy) {
    if (!Arrays.equals(dy.shape(), saved.output().shape())) {
      throw new IllegalArgumentException("dy must have y's shape "
          + Arrays.toString(saved.output().shape()) + ", got " + Arrays.toString(dy.shape()));
    }
    Flattened f = saved.flattened();
    Gradients g = inner.backward(saved.inner(), Flattened.of(dy, axis1, axis2).tensor());
    Tensor dx = f.restore(Tensor.of(g.input(), f.tensor().shape()));
    return new Gradients(dx.data(), g.parameters());
  }

  /** The output of a two-axis forward and the flattened attention's saved activations. */
  public record Activations(Tensor output, Flattened flattened, AttentionActivations inner) {}

  /**
   * {@code x} with axes (axis1, axis2) moved next to embed and merged into one (axis1 outer):
   * shape {@code (others..., n1·n2, embed)}; {@link #restore} undoes it. The sharded runner uses
   * it to run two-axis attention with any strategy on the flattened axis ({@code -2}).
   */
  public record Flattened(Tensor tensor, int[] perm, int[] movedShape) {

    public static Flattened of(Tensor x, int axis1, int axis2) {
      int rank = x.rank();
      if (rank < 3) {
        throw new IllegalArgumentException("two-axis attention needs rank >= 3 (two axes and"
            + " embed last), got " + x);
      }
      int a1 = MultiAxisAttention.checkAxis(axis1, rank, "axis1");
      int a2 = MultiAxisAttention.checkAxis(axis2, rank, "axis2");
      if (a1 == a2) {
        throw new IllegalArgumentException(
            "axis1 and axis2 are the same axis (" + axis1 + ", " + axis2 + ")");
      }
      List<Integer> order = new ArrayList<>();
      for (int i = 0; i < rank - 1; i++) {
        if (i != a1 && i != a2) {
          order.add(i);
        }
      }
      order.add(a1);
      order.add(a2);
      order.add(rank - 1);
      int[] perm = order.stream().mapToInt(Integer::intValue).toArray();
      Tensor moved = x.permute(perm);
      int[] ms = moved.shape();
      int[] flat = new int[rank - 1];
      System.arraycopy(ms, 0, flat, 0, rank - 3);
      flat[rank - 3] = ms[rank - 3] * ms[rank - 2];
      flat[rank - 2] = ms[rank - 1];
      return new Flattened(moved.reshape(flat), perm, ms);
    }

    /** An output shaped like {@link #tensor()} back in the input's layout. */
    public Tensor restore(Tensor y) {
      return y.reshape(movedShape).permute(Tensor.inverse(perm));
    }
  }

  @Override
  public void close() {
    inner.close();
  }
}
