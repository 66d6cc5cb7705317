package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.kernels.simd.ScalarFlashOps;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CPU attention backward against PyTorch autograd (float64, on the same fp32 inputs), from
 * the fixtures of {@code tools/fixtures/backward_fixtures.py}: odd lengths, head dims 16/24/64,
 * causal with global offsets, a key bound, queries that see no key. SIMD and scalar.
 */
class AttentionBackwardFixturesTest {
  private static CpuFlashAttention forward;
  private static List<CpuFlashAttentionBackward> kernels;

  @BeforeAll
  static void kernels() {
    forward = new CpuFlashAttention(2);
    kernels = List.of(new CpuFlashAttentionBackward(1), new CpuFlashAttentionBackward(2),
        new CpuFlashAttentionBackward(2, new ScalarFlashOps()));
  }

  @AfterAll
  static void close() {
    kernels.forEach(CpuFlashAttentionBackward::close);
    forward.close();
  }

  @ParameterizedTest
  @ValueSource(strings = {"plain_d16", "causal_offsets_d24", "keybound_d64",
      "causal_keybound_d64"})
  void matchesPyTorchAutograd(String name) throws URISyntaxException {
    Path file = fixture("attention_" + name + ".safetensors");
    Map<String, Tensor> t = Safetensors.read(file);
    Map<String, String> meta = Safetensors.metadata(file);
    float scale = Float.parseFloat(meta.get("scale"));
    long keyLimit = Long.parseLong(meta.get("key_limit"));
    AttentionMask mask = new AttentionMask(Boolean.parseBoolean(meta.get("causal")),
        Long.parseLong(meta.get("query_offset")), Long.parseLong(meta.get("key_offset")),
        keyLimit < 0 ? Long.MAX_VALUE : keyLimit);
    Tensor q = t.get("q");
    Tensor k = t.get("k");
    int[] shape = q.shape();
    int d = shape[3];
    double tol = CpuFlashAttentionBackwardTest.tolerance(shape[1], k.dim(1), d,
        Accuracy.maxAbsScore(BlockView.of(q), BlockView.of(k), scale));

    Tensor out = Tensor.zeros(shape);
    float[] lse = new float[shape[0] * shape[1] * shape[2]];
    forward.forward(BlockView.of(q), BlockView.of(k), BlockView.of(t.get("v")), scale, mask,
        BlockView.of(out), lse);
    Accuracy.assertClose(out.data(), t.get("y").data(), 1e-5, name + " forward");
    for (CpuFlashAttentionBackward kernel : kernels) {
      Tensor dq = Tensor.zeros(shape);
      Tensor dk = Tensor.zeros(k.shape());
      Tensor dv = Tensor.zeros(k.shape());
      kernel.backward(BlockView.of(q), BlockView.of(k), BlockView.of(t.get("v")),
          BlockView.of(out), lse, BlockView.of(t.get("dy")), scale, mask, BlockView.of(dq),
          BlockView.of(dk), BlockView.of(dv), false);
      String what = name + " " + kernel.name();
      Accuracy.assertClose(dq.data(), t.get("dq").data(), tol, what + " dq");
      Accuracy.assertClose(dk.data(), t.get("dk").data(), tol, what + " dk");
      Accuracy.assertClose(dv.data(), t.get("dv").data(), tol, what + " dv");
      if (name.equals("causal_offsets_d24")) {
        // queries 0..29 of each batch sit before every key: exactly zero, as in PyTorch
        for (int b = 0; b < shape[0]; b++) {
          for (int i = 0; i < 30 * d; i++) {
            assertEquals(0f, dq.data()[b * shape[1] * d + i], what + " dq of a blind query");
          }
        }
      }
    }
    assertTrue(tol < 5e-5, "bound " + tol);
  }

  static Path fixture(String file) throws URISyntaxException {
    return Path.of(AttentionBackwardFixturesTest.class
        .getResource("/fixtures/backward/" + file).toURI());
  }
}
