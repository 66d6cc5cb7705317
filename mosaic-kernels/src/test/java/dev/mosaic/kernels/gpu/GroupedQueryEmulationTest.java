package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.test.RandomQkv;
import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Grouped-query and multi-query attention in the CUDA kernels themselves (host emulation, see
 * {@link KernelHostEmulationTest}): K/V with G heads, a divisor of the H query heads, query head
 * h reading K/V head {@code h / (H / G)} in place. Every kernel that reads K/V — the fp32-FMA
 * kernel on fp32/fp16/bf16 storage, its varlen twin, the tensor-core kernel and its varlen twin —
 * against the double-precision reference with G &lt; H ({@link ReferenceAttention} maps heads with
 * {@code AttentionKernel.kvHead}), on odd sizes that cross tile edges. Tolerances are those of
 * the MHA tests (the same arithmetic per (query, head) row; only the K/V address changes): 1e-5
 * for the fp32 paths (fp32 sums of at most a few hundred terms, CpuFlashAttentionTest's model),
 * the 16-bit rounding model of {@link TensorCoreReference} for the tensor-core paths.
 */
class GroupedQueryEmulationTest {
  private static final Random SEEDS = TestSeed.random();
  private static HostEmulation emulation;

  @BeforeAll
  static void build() throws Exception {
    emulation = HostEmulation.buildOrSkip();
  }

  // Kept small on purpose: the emulation runs one OS thread per CUDA thread, and every case
  // below is a separate launch. The MHA suites cover the remaining masks and buckets; here each
  // kernel meets G < H at tile edges (queries 70 = 64 + 6, keys 129 = 2·64 + 1), both with
  // and without the causal mask.
  static Stream<Arguments> shapes() {
    return Stream.of(
        // batch, seqQ, seqK, heads H, K/V heads G, headDim: GQA (6/2, 6/3) and MQA (4/1)
        Arguments.of(1, 70, 129, 6, 2, 24),
        Arguments.of(2, 13, 70, 4, 1, 40),
        Arguments.of(1, 9, 70, 6, 3, 200));
  }

  @ParameterizedTest(name = "b={0} nq={1} nk={2} H={3} G={4} d={5}")
  @MethodSource("shapes")
  void fmaKernelReadsEachQueryHeadsKvHead(int b, int nq, int nk, int h, int g, int d)
      throws Exception {
    // fp32 under no mask and a ring step's causal offset with a key bound; fp16/bf16 storage
    // (converted on load, fp32 arithmetic) under the causal mask.
    check(GpuDtype.FP32, b, nq, nk, h, g, d, AttentionMask.NONE);
    check(GpuDtype.FP32, b, nq, nk, h, g, d, new AttentionMask(true, 5, 2, nk / 2 + 1));
    check(GpuDtype.FP16, b, nq, nk, h, g, d, AttentionMask.causalMask());
    check(GpuDtype.BF16, b, nq, nk, h, g, d, AttentionMask.causalMask());
  }

  private static void check(GpuDtype type, int b, int nq, int nk, int h, int g, int d,
      AttentionMask mask) throws Exception {
    KernelHostEmulationTest.compare(emulation, type,
        RandomQkv.draw(new Random(SEEDS.nextLong()), b, nq, nk, h, g, d),
        (float) (1 / Math.sqrt(d)), mask, 1e-5, 0);
  }

  @Test
  void tensorCoreKernelReadsEachQueryHeadsKvHead() throws Exception {
    // d = 24 and 40: cp.async loads of K/V rows G·d long; d = 33: element-wise loads, rows not
    // 16-byte aligned; one launch writes a 16-bit output.
    TensorCoreKernelEmulationTest.check(emulation, GpuDtype.FP16, 1, 70, 129, 6, 2, 24,
        AttentionMask.NONE, false, 1f);
    TensorCoreKernelEmulationTest.check(emulation, GpuDtype.BF16, 1, 70, 129, 6, 2, 24,
        AttentionMask.causalMask(), false, 1f);
    TensorCoreKernelEmulationTest.check(emulation, GpuDtype.BF16, 2, 13, 70, 4, 1, 40,
        new AttentionMask(true, 5, 2, 36), false, 1f);
    TensorCoreKernelEmulationTest.check(emulation, GpuDtype.FP16, 1, 67, 75, 6, 3, 33,
        AttentionMask.causalMask().at(20, 0), true, 1f);
  }

  @Test
  void varlenKernelsReadEachQueryHeadsKvHead() throws Exception {
    // Odd lengths crossing a tile edge, an empty sequence, key padding, cross lengths.
    int[] qLens = {1, 17, 0, 70};
    int[] kLens = {3, 17, 2, 66};
    int[] valid = {1, 9, 2, 60};
    VarlenSequences self = VarlenSequences.of(VarlenSequences.offsets(qLens));
    VarlenSequences cross = new VarlenSequences(VarlenSequences.offsets(qLens),
        VarlenSequences.offsets(kLens), null).withValidKeys(valid);
    KernelHostEmulationTest.checkVarlen(emulation, self, 1, 6, 2, 24, AttentionMask.causalMask());
    KernelHostEmulationTest.checkVarlen(emulation, cross, 2, 4, 1, 40,
        AttentionMask.keyLimit(50));
    TensorCoreVarlenEmulationTest.check(emulation, GpuDtype.FP16, self, 1, 6, 2, 24,
        AttentionMask.causalMask(), false);
    TensorCoreVarlenEmulationTest.check(emulation, GpuDtype.BF16, cross, 2, 4, 1, 40,
        AttentionMask.keyLimit(50), false);
  }

  /**
   * {@link CudaFlashAttention} itself with G &lt; H: its launch (built from the views' head
   * counts) runs in the emulation through a backend that does what {@code CudaFlashBackend} does
   * (pack, launch, unpack), so the whole host path of a GQA call is checked, not only the kernel.
   */
  @Test
  void cudaFlashAttentionRunsGroupedQueryCalls() throws Exception {
    Random rnd = new Random(SEEDS.nextLong());
    int n = 77;
    int d = 32;
    for (int[] hg : new int[][] {{6, 2}, {4, 1}}) {
      int h = hg[0];
      int g = hg[1];
      RandomQkv qkv = RandomQkv.draw(rnd, 2, n, n + 5, h, g, d);
      AttentionMask mask = AttentionMask.causalMask().at(5, 0);
      RandomQkv.Expected expected = qkv.reference(0.2f, mask);
      try (CudaFlashAttention kernel =
          new CudaFlashAttention(new EmulatedBackend(), GpuDtype.FP32, null)) {
        Tensor out = Tensor.zeros(2, n, h, d);
        float[] lse = new float[2 * n * h];
        kernel.forward(BlockView.of(qkv.q()), BlockView.of(qkv.k()), BlockView.of(qkv.v()), 0.2f,
            mask, BlockView.of(out), lse);
        String what = "H=" + h + " G=" + g;
        Accuracy.assertClose(out.data(), expected.out().data(), 1e-5, what);
        Accuracy.assertLseClose(lse, expected.lse(), 1e-5, 0, what);
        // K/V heads that do not divide the query heads (5 of 6, 3 of 4): one line, the counts.
        Tensor bad = Tensor.zeros(2, n, h - 1, d);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> kernel.forward(BlockView.of(qkv.q()), BlockView.of(bad), BlockView.of(bad),
                0.2f, mask, BlockView.of(out), lse));
        assertTrue(e.getMessage().contains("head counts do not fit"), e.getMessage());
      }
    }
  }

  /** The host side of {@code CudaFlashBackend.forward}, with the launch run in the emulation. */
  private static final class EmulatedBackend implements FlashBackend {
    @Override
    public void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v, float qScale,
        AttentionMask mask, BlockView out, float[] lse) {
      try {
        List<ByteBuffer> in = List.of(packed(q, launch.dtype()), packed(k, launch.dtype()),
            packed(v, launch.dtype()), HostEmulation.nans(launch.batch() * launch.seqQ()
                * launch.heads() * launch.headDim()),
            HostEmulation.nans(launch.batch() * launch.seqQ() * launch.heads()));
        List<ByteBuffer> res = emulation.run(launch.kernelName(), launch.gridX(),
            launch.heads(), launch.batch(), FlashLaunch.THREADS, launch.sharedBytes(),
            launch.arguments(0, 1, 2, 3, 4, qScale, mask), in);
        HostPacking.unpack(res.get(3).asFloatBuffer(), out);
        float[] l = HostEmulation.toFloats(res.get(4));
        System.arraycopy(l, 0, lse, 0, l.length);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }

    private static ByteBuffer packed(BlockView x, GpuDtype type) {
      ByteBuffer buf = ByteBuffer.allocate((int) HostPacking.packedBytes(x, type))
          .order(ByteOrder.LITTLE_ENDIAN);
      HostPacking.pack(x, type, buf);
      return buf.rewind();
    }

    @Override
    public void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {
      throw new AssertionError("not used");
    }

    @Override
    public String describe() {
      return "host emulation";
    }

    @Override
    public void close() {}
  }
}
