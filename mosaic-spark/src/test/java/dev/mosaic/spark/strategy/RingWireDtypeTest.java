package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.comm.CommConfig;
import dev.mosaic.spark.comm.WireDtype;
import dev.mosaic.test.TestSeed;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Ring forward with {@code wireDtype=bf16} over real TCP ranks: the K/V blocks a rank receives are
 * rounded to bf16, its own are not, and the result stays within the error bound of
 * docs/user-guide.md ("K/V in bf16 on the wire"), against the fp32 ring and against PyTorch.
 *
 * <p>The bound, per output element (query i, column c), with u = 2^-8 the bf16 unit roundoff:
 * each key element moves by at most u relatively, so each score s_ij = scale·q_i·k_j moves by at
 * most ε_i = u·scale·max_j Σ_d |q_id·k_jd| (j over the keys i sees). Shifting every score by at
 * most ε changes each softmax weight p_ij by a factor within [e^-2ε, e^2ε], and each value moves
 * by at most u relatively, so |õ_ic − o_ic| ≤ (e^{2ε_i}(1+u) − 1)·max_j |v_jc|. The two results
 * also each carry fp32 rounding: a weighted sum of n terms is within γ_n ≈ n·2^-24 of exact
 * (relative to max|v|); both runs, so 2·n·2^-24·max_j|v_jc| is added.
 */
@Timeout(120)
class RingWireDtypeTest {
  private static final CommConfig BF16 = CommConfig.defaults()
      .withTimeout(Duration.ofSeconds(30)).withWireDtype(WireDtype.BF16);
  private static final CommConfig FP32 = BF16.withWireDtype(WireDtype.FP32);
  /**
   * The ring against a float64 oracle of the same arithmetic (exact fp32, or with the received
   * blocks rounded exactly as PyTorch rounds them): the ring tests' norm-wise 1e-5 (fp32
   * rounding of sums over ~100 keys, ~1e-6). Far below the bf16 effect, ~1e-3.
   */
  private static final double FP32_TOL = 1e-5;

  static Path fixture(String file) {
    try {
      return Path.of(RingWireDtypeTest.class.getResource("/fixtures/wire/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"contiguous_p3_d16", "zigzag_p4_causal_d32",
      "contiguous_p2_keybound_d64"})
  void bf16RingEqualsPyTorchWithRoundedBlocksAndStaysWithinTheBound(String name)
      throws Exception {
    Path file = fixture("ring_" + name + ".safetensors");
    Map<String, Tensor> t = Safetensors.read(file);
    Map<String, String> meta = Safetensors.metadata(file);
    Tensor q = t.get("q");
    Tensor k = t.get("k");
    Tensor v = t.get("v");
    int n = q.dim(1);
    int p = Integer.parseInt(meta.get("parts"));
    ShardLayout layout = meta.get("layout").equals("zigzag") ? ShardLayout.zigzag(n, p)
        : contiguousFromOwners(t.get("owner").data(), p);
    int[][] owners = layout.owners();
    for (int i = 0; i < n; i++) {
      assertEquals((int) t.get("owner").data()[i], owners[i][0], "row " + i + "'s rank");
    }
    long keyLimit = Long.parseLong(meta.get("key_limit"));
    AttentionMask mask = new AttentionMask(Boolean.parseBoolean(meta.get("causal")), 0, 0,
        keyLimit < 0 ? Long.MAX_VALUE : keyLimit);
    float scale = Float.parseFloat(meta.get("scale"));

    Run bf16 = ring(BF16, layout, q, k, v, scale, mask);
    Tensor yWire = t.get("y_wire");
    Tensor y = t.get("y");
    double vsWire = RelativeError.of(bf16.out.data(), yWire.data());
    assertTrue(vsWire < FP32_TOL, "bf16 ring vs PyTorch with rounded blocks: " + vsWire);
    // The check above must be able to tell rounded from exact blocks.
    assertTrue(RelativeError.of(yWire.data(), y.data()) > 20 * FP32_TOL,
        "the fixture's rounding effect is too small to test");
    assertWithinBound(bf16.out, y, q, k, v, scale, mask);
    assertBytes(bf16, layout, q, WireDtype.BF16);
  }

  @Test
  void bf16RingStaysWithinTheBoundOfTheFp32RingAndSendsHalfTheBytes() throws Exception {
    Random rnd = TestSeed.random();
    int n = 203;
    ShardLayout layout = ShardLayout.zigzag(n, 4);
    Tensor q = Tensor.randn(rnd, 1f, 2, n, 3, 16);
    Tensor k = Tensor.randn(rnd, 1f, 2, n, 3, 16);
    Tensor v = Tensor.randn(rnd, 1f, 2, n, 3, 16);
    AttentionMask mask = AttentionMask.causalMask();
    Run exact = ring(FP32, layout, q, k, v, 0.25f, mask);
    Run bf16 = ring(BF16, layout, q, k, v, 0.25f, mask);
    assertWithinBound(bf16.out, exact.out, q, k, v, 0.25f, mask);
    assertTrue(RelativeError.of(bf16.out.data(), exact.out.data()) > 20 * FP32_TOL,
        "bf16 on the wire changed nothing: was anything rounded?");
    assertBytes(exact, layout, q, WireDtype.FP32);
    assertBytes(bf16, layout, q, WireDtype.BF16);
    for (int r = 0; r < 4; r++) {
      assertEquals(exact.bytes[r], 2 * bf16.bytes[r], "rank " + r + " halves its bytes");
    }
  }

  /**
   * Hierarchical ring/ring forwards blocks it received: a bf16 value rounds to itself, so each
   * element is rounded once at most and the same bound holds.
   */
  @Test
  void hierarchicalRingStaysWithinTheBoundAndHalvesItsBytes() throws Exception {
    Random rnd = TestSeed.random();
    int n = 97;
    ShardLayout layout = ShardLayout.contiguous(n, 4);
    Tensor q = Tensor.randn(rnd, 1f, 1, n, 2, 32);
    Tensor k = Tensor.randn(rnd, 1f, 1, n, 2, 32);
    Tensor v = Tensor.randn(rnd, 1f, 1, n, 2, 32);
    AttentionMask mask = AttentionMask.NONE;
    Factory hier = (comm, kernel) -> new HierarchicalRingStrategy(comm, layout, 2, kernel);
    Run exact = run(FP32, layout, hier, q, k, v, 0.25f, mask);
    Run bf16 = run(BF16, layout, hier, q, k, v, 0.25f, mask);
    assertWithinBound(bf16.out, exact.out, q, k, v, 0.25f, mask);
    assertTrue(RelativeError.of(bf16.out.data(), exact.out.data()) > 20 * FP32_TOL,
        "bf16 on the wire changed nothing: was anything rounded?");
    for (int r = 0; r < 4; r++) {
      assertTrue(exact.bytes[r] > 0);
      assertEquals(exact.bytes[r], 2 * bf16.bytes[r], "rank " + r + " halves its bytes");
    }
  }

  private record Run(Tensor out, long[] bytes) {}

  private interface Factory {
    Strategy make(dev.mosaic.spark.comm.Communicator comm, CpuFlashAttention kernel);
  }

  private static Run ring(CommConfig cfg, ShardLayout layout, Tensor q, Tensor k, Tensor v,
      float scale, AttentionMask mask) throws Exception {
    return run(cfg, layout, (comm, kernel) -> new RingStrategy(comm, layout, kernel), q, k, v,
        scale, mask);
  }

  private static Run run(CommConfig cfg, ShardLayout layout, Factory strategy, Tensor q,
      Tensor k, Tensor v, float scale, AttentionMask mask) throws Exception {
    int p = layout.parts();
    long[] bytes = new long[p];
    List<Tensor> outs = ThreadRanks.run(p, cfg, comm -> {
      int r = comm.rank();
      Tensor qs = RingStrategyTest.rows(q, layout.segments(r));
      Tensor out = Tensor.zeros(qs.shape());
      try (CpuFlashAttention kernel = new CpuFlashAttention(1);
          Strategy s = strategy.make(comm, kernel)) {
        long before = comm.bytesSent(); // a strategy's set-up (splits) travels in fp32
        s.attend(BlockView.of(qs),
            BlockView.of(RingStrategyTest.rows(k, layout.segments(r))),
            BlockView.of(RingStrategyTest.rows(v, layout.segments(r))), scale, mask,
            BlockView.of(out));
        bytes[r] = comm.bytesSent() - before;
      }
      return out;
    });
    Tensor full = Tensor.zeros(q.shape());
    for (int r = 0; r < p; r++) {
      RingStrategyTest.scatter(outs.get(r), layout.segments(r), full);
    }
    return new Run(full, bytes);
  }

  private static void assertBytes(Run run, ShardLayout layout, Tensor q, WireDtype wire) {
    for (int r = 0; r < layout.parts(); r++) {
      assertEquals(RingStrategy.bytesSent(layout, r, q.dim(0), q.dim(2), q.dim(3), wire),
          run.bytes[r], "rank " + r + " bytesSent in " + wire.label());
    }
  }

  /** Every element of {@code actual} within the bound of the class comment of {@code exact}. */
  static void assertWithinBound(Tensor actual, Tensor exact, Tensor q, Tensor k, Tensor v,
      float scale, AttentionMask mask) {
    int batch = q.dim(0);
    int n = q.dim(1);
    int heads = q.dim(2);
    int d = q.dim(3);
    double u = WireDtype.BF16_UNIT_ROUNDOFF;
    double worstRatio = 0;
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < heads; h++) {
        for (int i = 0; i < n; i++) {
          double maxDot = 0;
          double[] vmax = new double[d];
          int seen = 0;
          for (int j = 0; j < n; j++) {
            if (mask.masks(i, j)) {
              continue;
            }
            seen++;
            double dot = 0;
            for (int c = 0; c < d; c++) {
              dot += Math.abs(at(q, b, i, h, c) * at(k, b, j, h, c));
              vmax[c] = Math.max(vmax[c], Math.abs(at(v, b, j, h, c)));
            }
            maxDot = Math.max(maxDot, dot);
          }
          double eps = u * scale * maxDot;
          double factor = Math.exp(2 * eps) * (1 + u) - 1 + 2.0 * seen * 0x1p-24;
          for (int c = 0; c < d; c++) {
            double bound = factor * vmax[c];
            double err = Math.abs(at(actual, b, i, h, c) - at(exact, b, i, h, c));
            assertTrue(err <= bound, String.format("b=%d i=%d h=%d c=%d: |error| %.3g above the"
                + " bound %.3g", b, i, h, c, err, bound));
            if (bound > 0) {
              worstRatio = Math.max(worstRatio, err / bound);
            }
          }
        }
      }
    }
    System.out.printf("bf16 wire: largest error / bound = %.3f%n", worstRatio);
  }

  private static double at(Tensor t, int b, int i, int h, int c) {
    int[] s = t.shape();
    return t.data()[((b * s[1] + i) * s[2] + h) * s[3] + c];
  }

  private static ShardLayout contiguousFromOwners(float[] owner, int p) {
    int[] sizes = new int[p];
    for (float o : owner) {
      sizes[(int) o]++;
    }
    return ShardLayout.contiguous(sizes);
  }
}
