package dev.mosaic.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.bench.AttentionPeer;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The PyTorch peer computes the same attention as Mosaic's reference, with the flash backend. */
class TorchSdpaPeerTest {
  private static final Random SEEDS = TestSeed.random();
  private static TorchSdpaPeer peer;

  @BeforeAll
  static void load() {
    peer = new TorchSdpaPeer(2);
  }

  @AfterAll
  static void close() {
    peer.close();
  }

  @ParameterizedTest(name = "n={0} heads={1} d={2} causal={3}")
  @CsvSource({"1,1,16,false", "77,3,16,true", "130,2,32,false", "257,2,64,true", "65,1,128,false"})
  void matchesTheReference(int n, int heads, int d, boolean causal) {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 1f, n, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, n, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, n, heads, d);
    float scale = (float) (1 / Math.sqrt(d));
    Tensor expected = Tensor.zeros(n, heads, d);
    new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
        causal ? AttentionMask.causalMask() : AttentionMask.NONE, BlockView.of(expected),
        new float[n * heads]);
    try (AttentionPeer.Call call = peer.prepare(q.data(), k.data(), v.data(), n, heads, d, scale,
        causal)) {
      call.run();
      call.run(); // the second call runs TorchScript's optimised graph
      float[] got = call.output();
      assertEquals(expected.data().length, got.length);
      // fp32, softmax weights summing to 1 over unit-variance values: outputs within ~1e-6
      // of each other; 1e-5 leaves room for the different summation orders.
      for (int i = 0; i < got.length; i++) {
        assertEquals(expected.data()[i], got[i], 1e-5, "element " + i);
      }
    }
    assertTrue(peer.name().contains("(flash_attention, 2 threads, OMP_WAIT_POLICY="),
        peer.name());
  }

  /** The peer parked libgomp's idle threads before libtorch read the environment. */
  @org.junit.jupiter.api.Test
  void openMpThreadsAreParkedUnlessTheUserChose() {
    String chosen = System.getenv("OMP_WAIT_POLICY");
    assertEquals(chosen == null ? "PASSIVE" : chosen, OpenMpWaitPolicy.current());
    assertTrue(peer.name().contains("OMP_WAIT_POLICY=" + OpenMpWaitPolicy.current()),
        peer.name());
  }
}
