package dev.mosaic.kernels.gpu;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.test.RandomQkv;
import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA kernels themselves — flash_forward.cu and lse_merge.cu, compiled for the CPU by g++
 * with one thread per CUDA thread (src/main/cuda/emulation) — against the double-precision
 * reference, launched exactly as the CUDA backend launches them (kernel name, grid, block, dynamic
 * shared memory size, argument list, packed fp32/fp16/bf16 inputs). This checks the kernels'
 * indexing, masks, online softmax, quad shuffles, barriers and shared-memory bounds where no GPU
 * exists; it does not check GPU-specific behaviour (real warp scheduling, ex2.approx accuracy,
 * occupancy): {@link CudaFlashAttentionGpuTest} does that on a GPU.
 */
class KernelHostEmulationTest {
  private static final Random SEEDS = TestSeed.random();
  private static HostEmulation emulation;

  @BeforeAll
  static void build() throws Exception {
    emulation = HostEmulation.buildOrSkip();
  }

  static Stream<Arguments> shapes() {
    return Stream.of(
        // batch, seqQ, seqK, heads, headDim: every head-dim bucket, odd sizes, several tiles
        Arguments.of(1, 1, 1, 1, 8),
        Arguments.of(2, 13, 70, 2, 24),
        Arguments.of(1, 130, 70, 2, 40),
        Arguments.of(1, 70, 129, 1, 64),
        Arguments.of(1, 65, 66, 1, 128),
        Arguments.of(1, 9, 70, 1, 200));
  }

  static List<AttentionMask> masks(int nq, int nk) {
    return List.of(AttentionMask.NONE, AttentionMask.causalMask(),
        AttentionMask.causalMask().at(nk / 2 + 3, 0), // ring step: queries after the keys
        AttentionMask.causalMask().at(0, nq + 1), // keys after every query: all rows masked
        AttentionMask.keyLimit(Math.max(1, nk / 3)), new AttentionMask(true, 5, 2, nk / 2 + 1),
        AttentionMask.keyLimit(0));
  }

  @ParameterizedTest(name = "fp32 b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void fp32MatchesReferenceUnderEveryMask(int b, int nq, int nk, int h, int d) throws Exception {
    for (AttentionMask mask : masks(nq, nk)) {
      check(GpuDtype.FP32, b, nq, nk, h, d, mask, 1e-5);
    }
  }

  @ParameterizedTest(name = "fp16/bf16 b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void halfPrecisionInputsMatchReferenceOnRoundedInputs(int b, int nq, int nk, int h, int d)
      throws Exception {
    for (GpuDtype t : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(t, b, nq, nk, h, d, AttentionMask.NONE, 1e-5);
      check(t, b, nq, nk, h, d, new AttentionMask(true, 5, 2, nk / 2 + 1), 1e-5);
    }
  }

  @Test
  void largeScoresDoNotOverflow() throws Exception {
    RandomQkv qkv = RandomQkv.draw(new Random(SEEDS.nextLong()), 30f, 1, 100, 150, 2, 2, 32);
    // The same error model as CpuFlashAttentionTest's twin: fp32 rounds a score s by up to
    // |s|·2^-24, so the bound grows with the largest score (Accuracy.scoreError, here ~1e-2).
    double maxScore = Accuracy.maxAbsScore(BlockView.of(qkv.q()), BlockView.of(qkv.k()), 1f);
    compare(emulation, GpuDtype.FP32, qkv, 1f, AttentionMask.causalMask().at(60, 0), 1e-5,
        Accuracy.scoreError(maxScore));
  }

  @Test
  void varlenMatchesThePerSequenceReference() throws Exception {
    // Odd lengths crossing tile edges, an empty sequence, separate query/key lengths, batch 2.
    int[] qLens = {1, 2, 17, 63, 65, 0, 130};
    int[] kLens = {1, 5, 17, 70, 64, 3, 129};
    int[] valid = {1, 2, 0, 40, 64, 3, 100};
    VarlenSequences self = VarlenSequences.of(VarlenSequences.offsets(qLens));
    VarlenSequences cross = new VarlenSequences(VarlenSequences.offsets(qLens),
        VarlenSequences.offsets(kLens), null);
    checkVarlen(emulation, self, 2, 2, 2, 24, AttentionMask.causalMask());
    checkVarlen(emulation, self.withValidKeys(valid), 1, 2, 2, 40, AttentionMask.NONE);
    checkVarlen(emulation, cross, 1, 1, 1, 64, new AttentionMask(true, 10, 0, 90));
    checkVarlen(emulation, cross.withValidKeys(valid), 2, 1, 1, 8, AttentionMask.keyLimit(50));
  }

  /** The fp32 varlen kernel on {@code h} query heads and {@code g} K/V heads (g divides h). */
  static void checkVarlen(HostEmulation emulation, VarlenSequences seqs, int b, int h, int g,
      int d, AttentionMask mask) throws Exception {
    int nq = seqs.totalQueries();
    int nk = seqs.totalKeys();
    RandomQkv qkv = RandomQkv.draw(new Random(SEEDS.nextLong()), b, nq, nk, h, g, d);
    float scale = (float) (1 / Math.sqrt(d));
    FlashLaunch launch = FlashLaunch.of(GpuDtype.FP32, b, nq, nk, h, g, d);
    List<ByteBuffer> in = new ArrayList<>();
    for (Tensor t : new Tensor[] {qkv.q(), qkv.k(), qkv.v()}) {
      in.add(HostEmulation.floats(t.data()));
    }
    in.add(HostEmulation.nans(qkv.q().size()));
    in.add(HostEmulation.nans(b * nq * h));
    in.add(HostEmulation.ints(seqs.cuSeqlensQ()));
    in.add(HostEmulation.ints(seqs.cuSeqlensK()));
    in.add(HostEmulation.ints(seqs.validKeys() == null ? new int[1] : seqs.validKeys()));
    List<ByteBuffer> out = emulation.run(launch.varlenKernelName(),
        FlashLaunch.varlenGridX(seqs), h, launch.varlenGridZ(seqs), FlashLaunch.THREADS,
        launch.sharedBytes(),
        launch.varlenArguments(0, 1, 2, 3, 4, 5, 6, 7, seqs, scale * HostEmulation.LOG2E, mask),
        in);

    RandomQkv.Expected expected = qkv.referenceVarlen(seqs, scale, mask);
    String what = launch.varlenKernelName() + " " + mask + " " + seqs + " batch " + b + " heads "
        + h + "/" + g;
    Accuracy.assertClose(HostEmulation.toFloats(out.get(3)), expected.out().data(), 1e-5, what);
    Accuracy.assertLseClose(HostEmulation.toFloats(out.get(4)), expected.lse(), 1e-5, 0, what);
  }

  @Test
  void mergeKernelMatchesLseMerge() throws Exception {
    Random rnd = new Random(SEEDS.nextLong());
    int b = 2;
    int s = 37;
    int h = 3;
    int d = 40;
    Tensor acc = Tensor.randn(rnd, 1f, b, s, h, d);
    Tensor part = Tensor.randn(rnd, 1f, b, s, h, d);
    int rows = b * s * h;
    float[] accLse = new float[rows];
    float[] partLse = new float[rows];
    for (int i = 0; i < rows; i++) {
      accLse[i] = i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) (rnd.nextGaussian() * 5);
      partLse[i] = i % 5 == 0 ? Float.NEGATIVE_INFINITY : (float) (rnd.nextGaussian() * 5);
    }
    accLse[3] = 80f; // far apart: weights 0 and 1 without overflow
    partLse[3] = -80f;
    accLse[4] = -80f;
    partLse[4] = 80f;

    List<ByteBuffer> in = List.of(HostEmulation.floats(acc.data()), HostEmulation.floats(accLse),
        HostEmulation.floats(part.data()), HostEmulation.floats(partLse));
    List<ByteBuffer> out = emulation.run(FlashLaunch.MERGE_KERNEL,
        (int) FlashLaunch.mergeBlocks(rows), 1, 1, FlashLaunch.MERGE_THREADS, 0,
        FlashLaunch.mergeArguments(0, 1, 2, 3, rows, d), in);

    Tensor expected = acc.copy();
    float[] expectedLse = accLse.clone();
    LseMerge.merge(BlockView.of(expected), expectedLse, BlockView.of(part), partLse);
    Accuracy.assertClose(HostEmulation.toFloats(out.get(0)), expected.data(), 1e-6,
        "merged output");
    Accuracy.assertLseClose(HostEmulation.toFloats(out.get(1)), expectedLse, 1e-6, 0, "merged");
  }

  private static void check(GpuDtype type, int b, int nq, int nk, int h, int d,
      AttentionMask mask, double tol) throws Exception {
    compare(emulation, type, RandomQkv.draw(new Random(SEEDS.nextLong()), b, nq, nk, h, h, d),
        (float) (1 / Math.sqrt(d)), mask, tol, 0);
  }

  /**
   * Against the reference, within {@code tol} plus {@code scoreError} (Accuracy.scoreError); K and
   * V may have fewer heads than Q (grouped-query attention). The launch gets the fp32 draws,
   * packed (and so rounded) by {@link HostPacking} as the backend does.
   */
  static void compare(HostEmulation emulation, GpuDtype type, RandomQkv qkv, float scale,
      AttentionMask mask, double tol, double scoreError) throws Exception {
    int b = qkv.batch();
    int h = qkv.heads();
    FlashLaunch launch = FlashLaunch.of(type, b, qkv.queries(), qkv.keys(), h, qkv.kvHeads(),
        qkv.headDim());
    List<ByteBuffer> in = new ArrayList<>();
    for (Tensor t : new Tensor[] {qkv.q(), qkv.k(), qkv.v()}) {
      ByteBuffer buf = ByteBuffer.allocate((int) HostPacking.packedBytes(BlockView.of(t), type))
          .order(ByteOrder.LITTLE_ENDIAN);
      HostPacking.pack(BlockView.of(t), type, buf);
      in.add(buf);
    }
    in.add(HostEmulation.nans(qkv.q().size())); // every output element must be written
    in.add(HostEmulation.nans(b * qkv.queries() * h));
    List<ByteBuffer> out = emulation.run(launch.kernelName(), launch.gridX(), h, b,
        FlashLaunch.THREADS, launch.sharedBytes(),
        launch.arguments(0, 1, 2, 3, 4, scale * HostEmulation.LOG2E, mask), in);

    // The reference sees exactly what the kernel sees: inputs rounded to the storage type.
    RandomQkv.Expected expected = qkv.rounded(type).reference(scale, mask);

    String what = launch.kernelName() + " " + mask + " shape " + Arrays.toString(qkv.q().shape())
        + " nk=" + qkv.keys() + " kvHeads=" + qkv.kvHeads();
    Tensor actual = Tensor.zeros(qkv.q().shape());
    HostPacking.unpack(out.get(3).asFloatBuffer(), BlockView.of(actual));
    Accuracy.assertClose(actual.data(), expected.out().data(), tol + scoreError, what);
    Accuracy.assertLseClose(HostEmulation.toFloats(out.get(4)), expected.lse(), tol, scoreError,
        what);
  }
}
