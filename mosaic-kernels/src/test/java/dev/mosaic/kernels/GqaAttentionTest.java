package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.kernels.simd.ScalarFlashOps;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Grouped-query attention (K/V with G heads serving H query heads, G dividing H) in the CPU
 * kernels, forward and backward, against PyTorch float64 with the K/V heads repeated
 * ({@code tools/fixtures/gqa_fixtures.py}): H=6/G=2, MQA H=4/G=1 causal with offsets, H=6/G=3
 * with a key bound and head dim 7, two tiles causal. SIMD and scalar, one and two threads, and
 * the double references.
 */
class GqaAttentionTest {
  private static List<CpuFlashAttention> forwards;
  private static List<CpuFlashAttentionBackward> backwards;

  @BeforeAll
  static void kernels() {
    forwards = List.of(new CpuFlashAttention(1), new CpuFlashAttention(2),
        new CpuFlashAttention(2, new ScalarFlashOps()));
    backwards = List.of(new CpuFlashAttentionBackward(1), new CpuFlashAttentionBackward(2),
        new CpuFlashAttentionBackward(2, new ScalarFlashOps()));
  }

  @AfterAll
  static void close() {
    forwards.forEach(CpuFlashAttention::close);
    backwards.forEach(CpuFlashAttentionBackward::close);
  }

  @ParameterizedTest
  @ValueSource(strings = {"h6_g2_d12", "mqa_h4_g1_causal_d20", "h6_g3_keybound_d7",
      "h4_g2_causal_d32"})
  void matchesPyTorchWithRepeatedKeyValueHeads(String name) throws URISyntaxException {
    Path file = fixture("kernel_" + name + ".safetensors");
    Map<String, Tensor> t = Safetensors.read(file);
    Map<String, String> meta = Safetensors.metadata(file);
    float scale = Float.parseFloat(meta.get("scale"));
    long keyLimit = Long.parseLong(meta.get("key_limit"));
    AttentionMask mask = new AttentionMask(Boolean.parseBoolean(meta.get("causal")),
        Long.parseLong(meta.get("query_offset")), Long.parseLong(meta.get("key_offset")),
        keyLimit < 0 ? Long.MAX_VALUE : keyLimit);
    Tensor q = t.get("q");
    Tensor k = t.get("k");
    Tensor v = t.get("v");
    int[] shape = q.shape();
    int group = shape[2] / k.dim(2);
    assertTrue(k.dim(2) < shape[2], name + " has fewer K/V heads than query heads");
    // The backward's fp32 bound (CpuFlashAttentionBackwardTest.tolerance), with a K/V head's dK
    // and dV summing over its group's queries too: group·nq terms instead of nq. The forward's
    // error is smaller than the gradients' (no dP − D cancellation), so the same bound holds.
    double tol = CpuFlashAttentionBackwardTest.tolerance(shape[1] * group, k.dim(1), shape[3],
        Accuracy.maxAbsScore(BlockView.of(q), BlockView.of(k), scale));
    assertTrue(tol < 5e-5, "bound " + tol);

    float[] lse = new float[shape[0] * shape[1] * shape[2]];
    Tensor ref = Tensor.zeros(shape);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        mask, BlockView.of(ref), lse);
    Accuracy.assertClose(ref.data(), t.get("y").data(), tol, name + " reference forward");
    Tensor out = null;
    for (CpuFlashAttention kernel : forwards) {
      out = Tensor.zeros(shape);
      kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
          BlockView.of(out), lse);
      Accuracy.assertClose(out.data(), t.get("y").data(), tol, name + " " + kernel.name());
    }

    Tensor rdq = Tensor.zeros(shape);
    Tensor rdk = Tensor.zeros(k.shape());
    Tensor rdv = Tensor.zeros(k.shape());
    ReferenceAttentionBackward.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v),
        BlockView.of(t.get("dy")), scale, mask, BlockView.of(rdq), BlockView.of(rdk),
        BlockView.of(rdv));
    Accuracy.assertClose(rdq.data(), t.get("dq").data(), tol, name + " reference dq");
    Accuracy.assertClose(rdk.data(), t.get("dk").data(), tol, name + " reference dk");
    Accuracy.assertClose(rdv.data(), t.get("dv").data(), tol, name + " reference dv");
    for (CpuFlashAttentionBackward kernel : backwards) {
      Tensor dq = Tensor.zeros(shape);
      Tensor dk = Tensor.zeros(k.shape());
      Tensor dv = Tensor.zeros(k.shape());
      kernel.backward(BlockView.of(q), BlockView.of(k), BlockView.of(v), BlockView.of(out), lse,
          BlockView.of(t.get("dy")), scale, mask, BlockView.of(dq), BlockView.of(dk),
          BlockView.of(dv), false);
      String what = name + " " + kernel.name();
      Accuracy.assertClose(dq.data(), t.get("dq").data(), tol, what + " dq");
      Accuracy.assertClose(dk.data(), t.get("dk").data(), tol, what + " dk");
      Accuracy.assertClose(dv.data(), t.get("dv").data(), tol, what + " dv");
    }
  }

  /**
   * GQA reads K/V head ⌊h·G/H⌋ in place; MHA on K/V repeated to H heads does the very same
   * arithmetic, so the outputs and LSEs are bitwise equal, dense and varlen alike.
   */
  @Test
  void equalsMultiHeadAttentionOnRepeatedKeyValuesBitForBit() {
    Random rnd = new Random(1414);
    int b = 2;
    int n = 150; // three query tiles, the last one partial
    int heads = 6;
    int kvHeads = 2;
    int d = 24;
    Tensor q = Tensor.randn(rnd, 1f, b, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, b, n, kvHeads, d);
    Tensor v = Tensor.randn(rnd, 1f, b, n, kvHeads, d);
    Tensor kRep = repeat(k, heads);
    Tensor vRep = repeat(v, heads);
    VarlenSequences seqs = VarlenSequences.of(VarlenSequences.offsets(37, 0, 80, 33));
    for (CpuFlashAttention kernel : forwards) {
      for (AttentionMask mask : new AttentionMask[] {AttentionMask.NONE,
          AttentionMask.causalMask(), new AttentionMask(true, 5, 0, 90)}) {
        Tensor gqa = Tensor.zeros(b, n, heads, d);
        Tensor mha = Tensor.zeros(b, n, heads, d);
        float[] lseGqa = new float[b * n * heads];
        float[] lseMha = new float[b * n * heads];
        kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), 0.2f, mask,
            BlockView.of(gqa), lseGqa);
        kernel.forward(BlockView.of(q), BlockView.of(kRep), BlockView.of(vRep), 0.2f, mask,
            BlockView.of(mha), lseMha);
        assertArrayEquals(mha.data(), gqa.data(), kernel.name() + " " + mask);
        assertArrayEquals(lseMha, lseGqa, kernel.name() + " lse " + mask);

        kernel.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v), seqs, 0.2f, mask,
            BlockView.of(gqa), lseGqa);
        kernel.forwardVarlen(BlockView.of(q), BlockView.of(kRep), BlockView.of(vRep), seqs, 0.2f,
            mask, BlockView.of(mha), lseMha);
        assertArrayEquals(mha.data(), gqa.data(), kernel.name() + " varlen " + mask);
        assertArrayEquals(lseMha, lseGqa, kernel.name() + " varlen lse " + mask);
      }
    }
  }

  @Test
  void keyValueHeadsThatDoNotDivideTheQueryHeadsAreRefused() {
    Tensor q = Tensor.zeros(1, 4, 6, 8);
    Tensor kv = Tensor.zeros(1, 4, 4, 8);
    Tensor out = Tensor.zeros(1, 4, 6, 8);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> forwards.get(0).forward(BlockView.of(q), BlockView.of(kv), BlockView.of(kv), 1f,
            AttentionMask.NONE, BlockView.of(out), new float[24]));
    assertEquals("head counts do not fit: q 6, k 4, v 4, out 6 (expected out = q, v = k and"
        + " k's count dividing q's)", e.getMessage());
  }

  @Test
  void queryHeadsMapToConsecutiveGroups() {
    int[] expected = {0, 0, 0, 1, 1, 1};
    for (int h = 0; h < 6; h++) {
      assertEquals(expected[h], AttentionKernel.kvHead(h, 6, 2), "head " + h);
      assertEquals(h * 2 / 6, AttentionKernel.kvHead(h, 6, 2), "⌊h·G/H⌋ for head " + h);
      assertEquals(0, AttentionKernel.kvHead(h, 6, 1), "MQA head " + h);
      assertEquals(h, AttentionKernel.kvHead(h, 6, 6), "MHA head " + h);
    }
  }

  /** (b, n, G, d) → (b, n, H, d), K/V head g copied to query heads g·H/G .. (g+1)·H/G − 1. */
  private static Tensor repeat(Tensor kv, int heads) {
    int[] s = kv.shape();
    Tensor out = Tensor.zeros(s[0], s[1], heads, s[3]);
    int group = heads / s[2];
    for (int r = 0; r < s[0] * s[1]; r++) {
      for (int h = 0; h < heads; h++) {
        System.arraycopy(kv.data(), (r * s[2] + h / group) * s[3], out.data(),
            (r * heads + h) * s[3], s[3]);
      }
    }
    return out;
  }

  static Path fixture(String file) throws URISyntaxException {
    return Path.of(GqaAttentionTest.class.getResource("/fixtures/gqa/" + file).toURI());
  }
}
