package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.ThreadRanks;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link CrossAxisAttention} against PyTorch's {@code nn.MultiheadAttention(query=x, key=kv,
 * value=kv)} along one axis ({@code tools/fixtures/cross_attention_fixtures.py}: float64 on the
 * same fp32 inputs): four different axes, more and fewer queries than keys, a single key, causal
 * (top-left). Alone (local) and as a ring of 1–3 TCP ranks over uneven and empty shards of both
 * tensors, forward and every gradient of {@code sum(y·dy)}.
 *
 * <p>Tolerances from the fp32 error model: sequences of at most 17 positions and E ≤ 24, so each
 * output entry sums O(n + E) products with relative rounding ~6e-8 each (~1e-6 norm-wise; 1e-5
 * for y), each gradient entry O(n·E) of them (~1e-6 norm-wise, bound 1e-4, as for the
 * self-attention fixtures). A missed or doubled block or a wrong weight row costs O(1).
 */
@Timeout(120)
class CrossAxisAttentionFixturesTest {
  static final double FORWARD_TOL = 1e-5;
  static final double GRAD_TOL = 1e-4;
  static final String[] CASES = {"axis0", "axis1_causal", "axis_neg3", "axis_neg2_causal",
      "axis2_one_key"};

  record Fixture(String name, Map<String, Tensor> t, int heads, int axis, boolean causal) {
    static Fixture load(String name) {
      Path file;
      try {
        file = Path.of(CrossAxisAttentionFixturesTest.class
            .getResource("/fixtures/cross/cross_" + name + ".safetensors").toURI());
      } catch (URISyntaxException | NullPointerException e) {
        throw new IllegalStateException("fixture " + name + " is not on the test classpath", e);
      }
      Map<String, String> meta = Safetensors.metadata(file);
      return new Fixture(name, Safetensors.read(file), Integer.parseInt(meta.get("num_heads")),
          Integer.parseInt(meta.get("axis")), Boolean.parseBoolean(meta.get("causal")));
    }

    Tensor get(String key) {
      return t.get(key);
    }

    MultiAxisAttention.Builder builder() {
      Tensor x = get("x");
      return MultiAxisAttention.builder(x.dim(-1), heads, axis).weights(t, "").causal(causal)
          .threads(1);
    }

    int resolvedAxis() {
      return MultiAxisAttention.checkAxis(axis, get("x").rank(), "axis");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"axis0", "axis1_causal", "axis_neg3", "axis_neg2_causal",
      "axis2_one_key"})
  void localEqualsPyTorch(String name) {
    Fixture f = Fixture.load(name);
    try (CrossAxisAttention layer = new CrossAxisAttention(f.builder())) {
      assertTrue(RelativeError.of(layer.forward(f.get("x"), f.get("kv")), f.get("y"))
          < FORWARD_TOL, name + " forward alone");
      CrossAxisAttention.Activations a = layer.forwardForBackward(f.get("x"), f.get("kv"));
      CrossAxisAttention.Gradients g = layer.backward(a, f.get("dy"));
      check(name, "y", a.output(), f.get("y"), FORWARD_TOL);
      checkDx(name, g.dx(), f);
      check(name, "dkv", g.dkv(), f.get("dkv"), GRAD_TOL);
      assertEquals(List.of(AttentionWeights.IN_PROJ_WEIGHT, AttentionWeights.IN_PROJ_BIAS,
          AttentionWeights.OUT_PROJ_WEIGHT, AttentionWeights.OUT_PROJ_BIAS),
          List.copyOf(g.parameters().keySet()));
      for (String p : g.parameters().keySet()) {
        check(name, p, g.parameters().get(p), f.get("grad." + p), GRAD_TOL);
      }
    }
  }

  static Stream<Arguments> ringCases() {
    List<Arguments> all = new ArrayList<>();
    for (String name : CASES) {
      for (int p = 1; p <= 3; p++) {
        all.add(Arguments.of(name, p));
      }
    }
    return all.stream();
  }

  /**
   * Each rank holds a shard of x and a shard of kv along the axis (sizes differ, some empty);
   * the kv shards travel the ring. y, dx and dkv are gathered from the ranks, the weight
   * gradients summed over them.
   */
  @ParameterizedTest(name = "{0} p={1}")
  @MethodSource("ringCases")
  void ringOfTcpRanksEqualsPyTorch(String name, int p) throws Exception {
    Fixture f = Fixture.load(name);
    int ax = f.resolvedAxis();
    Tensor x = f.get("x");
    Tensor kv = f.get("kv");
    ShardLayout queries = ShardLayout.contiguous(querySizes(x.dim(ax), p));
    ShardLayout keys = ShardLayout.contiguous(keySizes(kv.dim(ax), p));
    List<Object[]> perRank = ThreadRanks.run(p, comm -> {
      int r = comm.rank();
      Tensor xs = slice(x, ax, queries, r);
      Tensor ks = slice(kv, ax, keys, r);
      Tensor dys = slice(f.get("dy"), ax, queries, r);
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          RingStrategy ring = new RingStrategy(comm, queries, keys, kernel);
          CrossAxisAttention layer = new CrossAxisAttention(f.builder().strategy(ring))) {
        CrossAxisAttention.Activations a = layer.forwardForBackward(xs, ks);
        Tensor y = layer.forward(xs, ks); // the forward without saving: the same numbers
        assertArrayEquals(a.output().data(), y.data(), name + " rank " + r);
        CrossAxisAttention.Gradients g = layer.backward(a, dys);
        return new Object[] {y, g};
      }
    });
    List<Tensor> ys = new ArrayList<>();
    List<Tensor> dxs = new ArrayList<>();
    List<Tensor> dkvs = new ArrayList<>();
    for (Object[] o : perRank) {
      ys.add((Tensor) o[0]);
      dxs.add(((CrossAxisAttention.Gradients) o[1]).dx());
      dkvs.add(((CrossAxisAttention.Gradients) o[1]).dkv());
    }
    String what = name + " p=" + p;
    check(what, "y", concat(ys, ax), f.get("y"), FORWARD_TOL);
    checkDx(what, concat(dxs, ax), f);
    check(what, "dkv", concat(dkvs, ax), f.get("dkv"), GRAD_TOL);
    for (String param : ((CrossAxisAttention.Gradients) perRank.get(0)[1]).parameters()
        .keySet()) {
      Tensor sum = Tensor.zeros(f.get("grad." + param).shape());
      for (Object[] o : perRank) {
        float[] g = ((CrossAxisAttention.Gradients) o[1]).parameters().get(param).data();
        for (int i = 0; i < g.length; i++) {
          sum.data()[i] += g[i];
        }
      }
      check(what, param, sum, f.get("grad." + param), GRAD_TOL);
    }
  }

  /** Uneven query shards: for p = 3 the middle rank holds none. */
  static int[] querySizes(int n, int p) {
    return switch (p) {
      case 1 -> new int[] {n};
      case 2 -> new int[] {n / 3, n - n / 3};
      default -> new int[] {n / 2, 0, n - n / 2};
    };
  }

  /** Key shards that differ from the query shards: for p = 3 the last rank holds none. */
  static int[] keySizes(int n, int p) {
    return switch (p) {
      case 1 -> new int[] {n};
      case 2 -> new int[] {n - n / 2 - n % 2, n / 2 + n % 2};
      default -> new int[] {n / 3, n - n / 3, 0};
    };
  }

  /** Rank r's positions of {@code t} along {@code axis}, as their own tensor. */
  static Tensor slice(Tensor t, int axis, ShardLayout layout, int r) {
    Tensor front = t.moveAxis(axis, 0);
    int inner = front.size() / Math.max(1, front.dim(0));
    ShardLayout.Segment s = layout.segments(r).get(0);
    int[] shape = front.shape();
    shape[0] = s.length();
    float[] data = Arrays.copyOfRange(front.data(), (int) s.start() * inner,
        (int) (s.start() + s.length()) * inner);
    return Tensor.of(data, shape).moveAxis(0, axis);
  }

  /** The shards joined along {@code axis}, in rank order. */
  static Tensor concat(List<Tensor> shards, int axis) {
    List<float[]> parts = new ArrayList<>();
    int total = 0;
    int[] shape = null;
    for (Tensor s : shards) {
      Tensor front = s.moveAxis(axis, 0);
      parts.add(front.data());
      total += front.dim(0);
      shape = front.shape();
    }
    shape[0] = total;
    float[] data = new float[parts.stream().mapToInt(a -> a.length).sum()];
    int at = 0;
    for (float[] a : parts) {
      System.arraycopy(a, 0, data, at, a.length);
      at += a.length;
    }
    return Tensor.of(data, shape).moveAxis(0, axis);
  }

  /**
   * dx against the fixture's; with a single key the softmax is constant, so PyTorch's dx is
   * exactly 0 and ours is the fp32 residue of dS = P∘(dP − D), two equal O(|dO|·|v|) terms
   * cancelling: ~1e-7 of the other gradients' size. Then its norm is held to the tolerance
   * times the norm of dkv (a gradient of the same layer and scale).
   */
  static void checkDx(String fixture, Tensor actual, Fixture f) {
    Tensor expected = f.get("dx");
    if (norm(expected) > 0) {
      check(fixture, "dx", actual, expected, GRAD_TOL);
      return;
    }
    assertArrayEquals(expected.shape(), actual.shape(), fixture + " dx shape");
    double ratio = norm(actual) / norm(f.get("dkv"));
    System.out.printf("%s dx: exactly 0 in PyTorch, ours |dx|/|dkv| = %.2e%n", fixture, ratio);
    assertTrue(ratio < GRAD_TOL, fixture + " dx: |dx|/|dkv| = " + ratio + " where PyTorch's dx"
        + " is 0 (tolerance " + GRAD_TOL + ")");
  }

  static double norm(Tensor t) {
    double s = 0;
    for (float v : t.data()) {
      s += (double) v * v;
    }
    return Math.sqrt(s);
  }

  static void check(String fixture, String what, Tensor actual, Tensor expected, double tol) {
    assertArrayEquals(expected.shape(), actual.shape(), fixture + " " + what + " shape");
    double err = RelativeError.of(actual, expected);
    System.out.printf("%s %s: relative error %.2e%n", fixture, what, err);
    assertTrue(err < tol, fixture + " " + what + ": relative error " + err + " (tolerance "
        + tol + ")");
  }
}
