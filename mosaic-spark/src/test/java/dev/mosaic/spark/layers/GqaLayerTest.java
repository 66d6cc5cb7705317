package dev.mosaic.spark.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.Strategy;
import dev.mosaic.spark.strategy.ThreadRanks;
import dev.mosaic.spark.strategy.UlyssesStrategy;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link MultiAxisAttention} with Hugging Face-style {@code q_proj/k_proj/v_proj/o_proj} weights
 * and fewer K/V heads than heads, against PyTorch float64 with the K/V heads repeated
 * ({@code tools/fixtures/gqa_fixtures.py}): H=6/G=2 with biases, MQA causal along axis 0, H=6/G=3
 * without biases (head dim 3). Forward and every gradient of {@code sum(y·dy)}; the layer through
 * a ring and Ulysses over TCP ranks; the separate layout with G = H is the packed MHA layer.
 * Tolerance: {@link MultiAxisAttentionBackwardFixturesTest#TOL} (the same sizes and error model).
 */
@Timeout(120)
public class GqaLayerTest {
  static final List<String> CASES = List.of("h6_g2_bias", "mqa_h4_g1_causal", "h6_g3_nobias");

  @ParameterizedTest
  @ValueSource(strings = {"h6_g2_bias", "mqa_h4_g1_causal", "h6_g3_nobias"})
  void forwardAndGradientsEqualPyTorch(String name) {
    Map<String, Tensor> t = Safetensors.read(fixture(name));
    Map<String, String> meta = Safetensors.metadata(fixture(name));
    int heads = Integer.parseInt(meta.get("num_heads"));
    int kvHeads = Integer.parseInt(meta.get("num_kv_heads"));
    Tensor x = t.get("x");
    int e = x.dim(-1);
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, heads,
        Integer.parseInt(meta.get("axis"))).weights(t, "")
        .causal(Boolean.parseBoolean(meta.get("causal"))).threads(2).build()) {
      assertEquals(kvHeads, layer.numKvHeads(), "K/V heads implied by k_proj.weight");
      AttentionActivations a = layer.forwardForBackward(x, Long.MAX_VALUE);
      MultiAxisAttentionBackwardFixturesTest.check(name, "y", a.output(), t.get("y"));
      MultiAxisAttentionBackwardFixturesTest.check(name, "y (forward)", layer.forward(x),
          t.get("y"));
      Gradients g = layer.backward(a, t.get("dy"));
      MultiAxisAttentionBackwardFixturesTest.check(name, "dx", Tensor.of(g.input(), x.shape()),
          t.get("dx"));
      Map<String, Tensor> named =
          SeparateProjections.split(g.parameters(), e, kvHeads * (e / heads));
      boolean biases = Boolean.parseBoolean(meta.get("biases"));
      for (String proj : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
        MultiAxisAttentionBackwardFixturesTest.check(name, proj + ".weight",
            named.get(proj + ".weight"), t.get("grad." + proj + ".weight"));
        if (biases) {
          checkBias(name, proj, named, t);
        }
      }
    }
  }

  /** Each rank holds its shard of the attention axis; its rows equal the local layer's. */
  @ParameterizedTest
  @ValueSource(strings = {"ring", "ulysses"})
  void throughTcpRanksEqualsTheLocalLayer(String backend) throws Exception {
    Map<String, Tensor> t = Safetensors.read(fixture("h6_g2_bias"));
    Tensor x = t.get("x"); // (2, 13, 24) attended along axis 1
    int p = backend.equals("ring") ? 3 : 2; // ulysses: 6 heads and 2 K/V heads over 2 ranks
    ShardLayout layout = ShardLayout.contiguous(13, p);
    Tensor expected;
    try (MultiAxisAttention local = MultiAxisAttention.builder(24, 6, 1).weights(t, "")
        .threads(1).build()) {
      expected = local.forward(x);
    }
    List<Tensor> outs = ThreadRanks.run(p, comm -> {
      ShardLayout.Segment seg = layout.segments(comm.rank()).get(0);
      Tensor mine = slice(x, (int) seg.start(), seg.length());
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy strategy = backend.equals("ring") ? new RingStrategy(comm, layout, kernel)
              : new UlyssesStrategy(comm, layout, kernel);
          MultiAxisAttention layer = MultiAxisAttention.builder(24, 6, 1).weights(t, "")
              .strategy(strategy).threads(1).build()) {
        return layer.forward(mine);
      }
    });
    for (int r = 0; r < p; r++) {
      ShardLayout.Segment seg = layout.segments(r).get(0);
      MultiAxisAttentionBackwardFixturesTest.check(backend, "rank " + r,
          outs.get(r), slice(expected, (int) seg.start(), seg.length()));
    }
  }

  @Test
  void separateProjectionsWithAsManyKeyValueHeadsAreThePackedLayer() {
    AttentionWeights packed = AttentionWeights.random(12, 7);
    Map<String, Tensor> separate = SeparateProjections.split(packed.toMap(""), 12, 12);
    Tensor x = Tensor.randn(new Random(3), 1f, 5, 9, 12);
    try (MultiAxisAttention a = MultiAxisAttention.builder(12, 3, 1).weights(packed).threads(1)
            .build();
        MultiAxisAttention b = MultiAxisAttention.builder(12, 3, 1).weights(separate, "")
            .threads(1).build()) {
      assertEquals(3, b.numKvHeads());
      assertArrayEquals(a.forward(x).data(), b.forward(x).data());
    }
  }

  @Test
  void badShapesAndHeadCountsAreOneLineErrorsNamingTheArgument() {
    Map<String, Tensor> t = new HashMap<>(Safetensors.read(fixture("h6_g2_bias")));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MultiAxisAttention.builder(24, 6, 1).numKvHeads(3).weights(t, ""));
    assertEquals("weight 'k_proj.weight' has shape [8, 24], expected [12, 24] for embed 24, 6"
        + " heads and 3 K/V heads", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> MultiAxisAttention.builder(24, 6, 1).numKvHeads(4).build());
    assertEquals("numKvHeads 4 must be positive and divide numHeads 6 (each K/V head serves"
        + " numHeads/numKvHeads query heads)", e.getMessage());
    t.put("v_proj.bias", Tensor.zeros(7));
    e = assertThrows(IllegalArgumentException.class,
        () -> MultiAxisAttention.builder(24, 6, 1).weights(t, ""));
    assertEquals("weight 'v_proj.bias' has shape [7], expected [8]", e.getMessage());
    t.remove("o_proj.weight");
    e = assertThrows(IllegalArgumentException.class,
        () -> MultiAxisAttention.builder(24, 6, 1).weights(t, ""));
    assertEquals(true, e.getMessage().startsWith("weight 'o_proj.weight' is missing; the weights"
        + " hold ["), e.getMessage());
  }

  @Test
  void cachedKeysRefuseGroupedQueryAttentionInOneLine() {
    try (MultiAxisAttention layer = MultiAxisAttention.builder(12, 4, 0).numKvHeads(2).threads(1)
        .build()) {
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> layer.keyValues(Tensor.zeros(3, 12)));
      assertEquals("keyValues (attending to cached keys) needs numKvHeads = numHeads; this layer"
          + " has 2 K/V heads for 4 heads", e.getMessage());
    }
  }

  /**
   * A bias gradient. k_proj.bias's is 0 in exact arithmetic (a key bias adds q·b to every score of
   * a query, which the softmax ignores): both sides are rounding noise (~1e-17 in PyTorch's
   * float64, ~1e-8 here), so it is held to TOL times the size of q_proj.bias's gradient instead.
   */
  public static void checkBias(String name, String proj, Map<String, Tensor> got,
      Map<String, Tensor> fixture) {
    Tensor actual = got.get(proj + ".bias");
    Tensor expected = fixture.get("grad." + proj + ".bias");
    if (!proj.equals("k_proj")) {
      MultiAxisAttentionBackwardFixturesTest.check(name, proj + ".bias", actual, expected);
      return;
    }
    double diff = 0;
    for (int i = 0; i < actual.size(); i++) {
      diff += Math.pow(actual.data()[i] - expected.data()[i], 2);
    }
    double scale = 0;
    for (float g : fixture.get("grad.q_proj.bias").data()) {
      scale += (double) g * g;
    }
    double err = Math.sqrt(diff / scale);
    assertEquals(true, err < MultiAxisAttentionBackwardFixturesTest.TOL,
        name + " k_proj.bias: error " + err + " relative to |grad q_proj.bias|");
  }

  /** Positions {@code [from, from + count)} of axis 1 of a rank-3 tensor. */
  private static Tensor slice(Tensor x, int from, int count) {
    int[] s = x.shape();
    Tensor out = Tensor.zeros(s[0], count, s[2]);
    for (int b = 0; b < s[0]; b++) {
      System.arraycopy(x.data(), (b * s[1] + from) * s[2], out.data(), b * count * s[2],
          count * s[2]);
    }
    return out;
  }

  static Path fixture(String name) {
    try {
      return Path.of(GqaLayerTest.class.getResource("/fixtures/gqa/layer_" + name
          + ".safetensors").toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + name + " is not on the test classpath", e);
    }
  }
}
