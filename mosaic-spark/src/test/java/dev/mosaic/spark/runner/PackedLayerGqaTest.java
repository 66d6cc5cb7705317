package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.layers.SeparateProjections;
import dev.mosaic.test.TestSeed;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Grouped-query attention in one packed (varlen) call: the PyTorch GQA layer fixtures
 * ({@code tools/fixtures/gqa_fixtures.py}, Hugging Face-style q/k/v/o_proj, float64 with the K/V
 * heads repeated) packed between sequences of other lengths. The fixture's sequences must equal
 * PyTorch's y, the others the (PyTorch-checked) layer on each sequence alone.
 *
 * <p>Tolerance 1e-5 relative: fp32 dot products of at most E = 24 terms, softmax sums over at most
 * 70 keys and the output projection's 24 terms; each step rounds by at most 6e-8, so the worst
 * case is ~120 · 6e-8 ≈ 7e-6 and typical errors are ~1e-7 (printed).
 */
class PackedLayerGqaTest {
  private static final double TOL = 1e-5;
  private final Random rnd = TestSeed.random();

  /** One sequence of the packed buffer: its rows and the output it must give. */
  private record Seq(String what, int length, float[] x, float[] expected) {}

  @ParameterizedTest
  @ValueSource(strings = {"h6_g2_bias", "mqa_h4_g1_causal", "h6_g3_nobias"})
  void fixturesPackedAmongOtherLengthsEqualPyTorch(String name) {
    Map<String, Tensor> t = Safetensors.read(fixture(name));
    Map<String, String> meta = Safetensors.metadata(fixture(name));
    int heads = Integer.parseInt(meta.get("num_heads"));
    int kvHeads = Integer.parseInt(meta.get("num_kv_heads"));
    boolean causal = Boolean.parseBoolean(meta.get("causal"));
    Tensor x = t.get("x");
    Tensor y = t.get("y");
    int e = x.dim(-1);
    AttentionWeights w = SeparateProjections.read(t, "", e, heads, kvHeads);
    // Axis 0 of (n, F, E): one sequence of n positions, F features each. Axis 1 of (B, n, E):
    // B sequences of n vectors, each x[b] contiguous.
    boolean axis0 = Tensor.normalizeAxis(Integer.parseInt(meta.get("axis")), x.rank(),
        "axis") == 0;
    int features = axis0 ? x.dim(1) : 1;
    int rowFloats = features * e;
    List<Seq> fixtureSeqs = new ArrayList<>();
    int count = axis0 ? 1 : x.dim(0);
    int n = axis0 ? x.dim(0) : x.dim(1);
    for (int b = 0; b < count; b++) {
      int from = b * n * rowFloats;
      fixtureSeqs.add(new Seq(name + " sequence " + b + " vs PyTorch", n,
          Arrays.copyOfRange(x.data(), from, from + n * rowFloats),
          Arrays.copyOfRange(y.data(), from, from + n * rowFloats)));
    }
    List<Seq> seqs = new ArrayList<>();
    int[] others = {5, 70, 1, 30};
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, heads, 0).weights(w)
        .causal(causal).threads(2).build()) {
      for (int i = 0; i < others.length; i++) {
        int len = others[i];
        int[] shape = features == 1 ? new int[] {len, e} : new int[] {len, features, e};
        Tensor xs = Tensor.randn(rnd, 1f, shape);
        seqs.add(new Seq("sequence of " + len + " vs the layer", len, xs.data(),
            layer.forward(xs).data()));
        if (i < fixtureSeqs.size()) {
          seqs.add(fixtureSeqs.get(i)); // fixture sequences sit between the others
        }
      }
    }
    int[] lengths = seqs.stream().mapToInt(Seq::length).toArray();
    int[] cu = VarlenSequences.offsets(lengths);
    float[] packed = new float[cu[lengths.length] * rowFloats];
    for (int s = 0; s < lengths.length; s++) {
      System.arraycopy(seqs.get(s).x(), 0, packed, cu[s] * rowFloats, lengths[s] * rowFloats);
    }
    float[] out;
    try (PackedLayer layer = new PackedLayer(w, e, heads, kvHeads, causal, Long.MAX_VALUE,
        new CpuFlashAttention(2), 2)) {
      out = layer.forward(packed, cu, features);
    }
    for (int s = 0; s < lengths.length; s++) {
      float[] actual = Arrays.copyOfRange(out, cu[s] * rowFloats, cu[s + 1] * rowFloats);
      double err = RelativeError.of(Tensor.of(actual, actual.length),
          Tensor.of(seqs.get(s).expected(), actual.length));
      System.out.printf("%s: relative error %.2e%n", seqs.get(s).what(), err);
      assertTrue(err < TOL, seqs.get(s).what() + ": relative error " + err);
    }
  }

  @Test
  void keyValueHeadsThatDoNotFitAreRefused() {
    AttentionWeights w = AttentionWeights.random(24, 8, 1); // G = 2 K/V heads of d = 4
    try (CpuFlashAttention kernel = new CpuFlashAttention(1)) {
      IllegalArgumentException notDividing = assertThrows(IllegalArgumentException.class,
          () -> new PackedLayer(w, 24, 6, 4, false, Long.MAX_VALUE, kernel, 1));
      assertTrue(notDividing.getMessage().startsWith("numKvHeads 4 must be positive and divide"
          + " numHeads 6"), notDividing.getMessage());
      IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
          () -> new PackedLayer(w, 24, 6, 3, false, Long.MAX_VALUE, kernel, 1));
      assertTrue(shape.getMessage().equals("weight 'in_proj_weight' has shape [40, 24], expected"
          + " [48, 24]"), shape.getMessage());
    }
  }

  private static Path fixture(String name) {
    try {
      return Path.of(PackedLayerGqaTest.class.getResource("/fixtures/gqa/layer_" + name
          + ".safetensors").toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + name + " is not on the test classpath", e);
    }
  }
}
