package dev.mosaic.kernels.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The side-by-side logic, with a stand-in peer (the real one needs -Pbench and libtorch). */
class KernelComparisonTest {

  /** Mosaic's reference attention playing the peer: it must agree to fp32 rounding. */
  static final class ReferencePeer implements AttentionPeer {
    int calls;

    @Override
    public String name() {
      return "reference";
    }

    @Override
    public Call prepare(float[] q, float[] k, float[] v, int n, int heads, int headDim,
        float scale, boolean causal) {
      Tensor out = Tensor.zeros(n, heads, headDim);
      return new Call() {
        @Override
        public void run() {
          calls++;
          new ReferenceAttention().forward(BlockView.of(Tensor.of(q, n, heads, headDim)),
              BlockView.of(Tensor.of(k, n, heads, headDim)),
              BlockView.of(Tensor.of(v, n, heads, headDim)), scale,
              causal ? AttentionMask.causalMask() : AttentionMask.NONE, BlockView.of(out),
              new float[n * heads]);
        }

        @Override
        public float[] output() {
          return out.data();
        }

        @Override
        public void close() {}
      };
    }

    @Override
    public void close() {}
  }

  @Test
  void comparesBothOnTheSameInputs() {
    ReferencePeer peer = new ReferencePeer();
    List<KernelComparison.Row> rows = new KernelComparison(2, 1, 0.01)
        .run(new int[] {16, 40}, new int[] {70}, peer, new PrintStream(new ByteArrayOutputStream()));
    assertEquals(4, rows.size()); // 2 head dims x 1 length x (full, causal)
    for (KernelComparison.Row r : rows) {
      assertTrue(r.maxAbsDiff() < 1e-5, "outputs differ by " + r.maxAbsDiff());
      assertTrue(r.speedup() > 0 && Double.isFinite(r.speedup()), "ratio " + r.speedup());
      assertTrue(r.runs() >= 3, "runs " + r.runs());
    }
    assertTrue(peer.calls >= 4 * 3, "peer calls " + peer.calls);
  }

  @Test
  void withoutAPeerOnlyMosaicRuns() {
    List<KernelComparison.Row> rows = new KernelComparison(1, 1, 0.01)
        .run(new int[] {16}, new int[] {33}, null, new PrintStream(new ByteArrayOutputStream()));
    assertEquals(2, rows.size());
    assertTrue(Double.isNaN(rows.get(0).peerSeconds()));
    assertTrue(rows.get(0).oursGflops() > 0);
  }

  @Test
  void anUnbuiltPeerSaysHowToBuildIt(@TempDir Path dir) {
    PeerLoader.Result r = PeerLoader.load(dir.resolve("target"), 1);
    assertNull(r.peer());
    assertTrue(r.whyNot().startsWith("mosaic-bench is not built"), r.whyNot());
    assertTrue(r.whyNot().contains("-Pbench -pl mosaic-bench -am"), r.whyNot());
  }

  @Test
  void reportPrintsTheReasonAndMosaicsColumn() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    KernelComparison.report(new PrintStream(bytes, true, StandardCharsets.UTF_8), 1,
        new int[] {16}, new int[] {20}, 1, null, "not built");
    String text = bytes.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("PyTorch peer not available: not built"), text);
    assertTrue(text.contains("| 16 | 20 | no |"), text);
  }

  /** A row with the given speeds; peerGflops NaN = no peer. */
  private static KernelComparison.Row row(double oursGflops, double peerGflops) {
    double flops = 1e9;
    return new KernelComparison.Row(64, 1024, false, flops / oursGflops / 1e9, oursGflops,
        flops / peerGflops / 1e9, peerGflops, 0, 5, 0, 0);
  }

  /**
   * The slow-JVM flag (numbers from docs/performance.md, "Slow JVMs"): a JVM at 0.2-0.35x
   * PyTorch in every cell is flagged, one slow cell among sound ones (a noisy moment) is not;
   * without a peer the measured peak is the yardstick.
   */
  @Test
  void flagsAJvmWhoseKernelRanSlowEverywhere() {
    double peak = 450;
    assertTrue(KernelComparison.looksLikeASlowJvm(
        List.of(row(20, 90), row(25, 100), row(30, 140), row(28, 130)), peak));
    assertTrue(!KernelComparison.looksLikeASlowJvm(
        List.of(row(20, 90), row(150, 100), row(250, 140), row(240, 130)), peak));
    assertTrue(KernelComparison.looksLikeASlowJvm(
        List.of(row(20, Double.NaN), row(25, Double.NaN), row(300, Double.NaN)), peak));
    assertTrue(!KernelComparison.looksLikeASlowJvm(
        List.of(row(60, Double.NaN), row(150, Double.NaN), row(300, Double.NaN)), peak));
    assertTrue(!KernelComparison.looksLikeASlowJvm(List.of(), peak));
  }
}
