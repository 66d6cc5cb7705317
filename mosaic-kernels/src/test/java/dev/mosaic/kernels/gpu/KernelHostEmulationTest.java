package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
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
  private static final ReferenceAttention REF = new ReferenceAttention();
  private static final float LOG2E = (float) (1.0 / Math.log(2));
  private static HostEmulation emulation;

  @BeforeAll
  static void build() throws Exception {
    String cxx = HostEmulation.compiler();
    Assumptions.assumeTrue(cxx != null, "no C++ compiler (g++, c++, clang++) on the PATH to build"
        + " the host emulation of the CUDA kernels");
    emulation = HostEmulation.build(cxx);
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
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 30f, 1, 100, 2, 32);
    Tensor k = Tensor.randn(rnd, 30f, 1, 150, 2, 32);
    Tensor v = Tensor.randn(rnd, 1f, 1, 150, 2, 32);
    // The same error model as CpuFlashAttentionTest's twin: fp32 rounds a score s by up to
    // |s|·2^-24, so the bound grows with the largest score (Accuracy.scoreError, here ~1e-2).
    double maxScore = Accuracy.maxAbsScore(BlockView.of(q), BlockView.of(k), 1f);
    compare(emulation, GpuDtype.FP32, q, k, v, 1f, AttentionMask.causalMask().at(60, 0), 1e-5,
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
    Random rnd = new Random(SEEDS.nextLong());
    int nq = seqs.totalQueries();
    int nk = seqs.totalKeys();
    Tensor q = Tensor.randn(rnd, 1f, b, nq, h, d);
    Tensor k = Tensor.randn(rnd, 1f, b, nk, g, d);
    Tensor v = Tensor.randn(rnd, 1f, b, nk, g, d);
    float scale = (float) (1 / Math.sqrt(d));
    FlashLaunch launch = FlashLaunch.of(GpuDtype.FP32, b, nq, nk, h, g, d);
    List<ByteBuffer> in = new ArrayList<>();
    for (Tensor t : new Tensor[] {q, k, v}) {
      in.add(floats(t.data()));
    }
    float[] nan = new float[q.size()];
    Arrays.fill(nan, Float.NaN);
    in.add(floats(nan));
    float[] lseNan = new float[b * nq * h];
    Arrays.fill(lseNan, Float.NaN);
    in.add(floats(lseNan));
    in.add(ints(seqs.cuSeqlensQ()));
    in.add(ints(seqs.cuSeqlensK()));
    in.add(ints(seqs.validKeys() == null ? new int[1] : seqs.validKeys()));
    List<ByteBuffer> out = emulation.run(launch.varlenKernelName(),
        FlashLaunch.varlenGridX(seqs), h, launch.varlenGridZ(seqs), FlashLaunch.THREADS,
        launch.sharedBytes(),
        launch.varlenArguments(0, 1, 2, 3, 4, 5, 6, 7, seqs, scale * LOG2E, mask), in);

    Tensor expected = Tensor.zeros(b, nq, h, d);
    float[] expectedLse = new float[b * nq * h];
    REF.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v), seqs, scale, mask,
        BlockView.of(expected), expectedLse);
    String what = launch.varlenKernelName() + " " + mask + " " + seqs + " batch " + b + " heads "
        + h + "/" + g;
    Accuracy.assertClose(toFloats(out.get(3)), expected.data(), 1e-5, what);
    float[] lse = toFloats(out.get(4));
    for (int i = 0; i < lse.length; i++) {
      if (expectedLse[i] == Float.NEGATIVE_INFINITY) {
        assertEquals(Float.NEGATIVE_INFINITY, lse[i], what + " lse " + i);
      } else {
        assertEquals(expectedLse[i], lse[i], 1e-5 * Math.max(1, Math.abs(expectedLse[i])),
            what + " lse " + i);
      }
    }
  }

  private static ByteBuffer ints(int[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(values);
    return b;
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

    List<ByteBuffer> in = List.of(floats(acc.data()), floats(accLse), floats(part.data()),
        floats(partLse));
    List<ByteBuffer> out = emulation.run(FlashLaunch.MERGE_KERNEL,
        (int) FlashLaunch.mergeBlocks(rows), 1, 1, FlashLaunch.MERGE_THREADS, 0,
        FlashLaunch.mergeArguments(0, 1, 2, 3, rows, d), in);

    Tensor expected = acc.copy();
    float[] expectedLse = accLse.clone();
    LseMerge.merge(BlockView.of(expected), expectedLse, BlockView.of(part), partLse);
    Accuracy.assertClose(toFloats(out.get(0)), expected.data(), 1e-6, "merged output");
    float[] lse = toFloats(out.get(1));
    for (int i = 0; i < rows; i++) {
      if (expectedLse[i] == Float.NEGATIVE_INFINITY) {
        assertEquals(Float.NEGATIVE_INFINITY, lse[i], "lse " + i);
      } else {
        assertEquals(expectedLse[i], lse[i], 1e-6 * Math.max(1, Math.abs(expectedLse[i])),
            "lse " + i);
      }
    }
  }

  private static void check(GpuDtype type, int b, int nq, int nk, int h, int d,
      AttentionMask mask, double tol) throws Exception {
    Random rnd = new Random(SEEDS.nextLong());
    compare(emulation, type, Tensor.randn(rnd, 1f, b, nq, h, d),
        Tensor.randn(rnd, 1f, b, nk, h, d),
        Tensor.randn(rnd, 1f, b, nk, h, d), (float) (1 / Math.sqrt(d)), mask, tol, 0);
  }

  /**
   * Against the reference, within {@code tol} plus {@code scoreError} (Accuracy.scoreError); k and
   * v may have fewer heads than q (grouped-query attention).
   */
  static void compare(HostEmulation emulation, GpuDtype type, Tensor q, Tensor k, Tensor v,
      float scale, AttentionMask mask, double tol, double scoreError) throws Exception {
    int[] s = q.shape();
    int b = s[0];
    int nq = s[1];
    int h = s[2];
    int d = s[3];
    int nk = k.shape()[1];
    int g = k.shape()[2];
    FlashLaunch launch = FlashLaunch.of(type, b, nq, nk, h, g, d);
    List<ByteBuffer> in = new ArrayList<>();
    for (Tensor t : new Tensor[] {q, k, v}) {
      ByteBuffer buf = ByteBuffer.allocate((int) HostPacking.packedBytes(BlockView.of(t), type))
          .order(ByteOrder.LITTLE_ENDIAN);
      HostPacking.pack(BlockView.of(t), type, buf);
      in.add(buf);
    }
    float[] nan = new float[q.size()];
    Arrays.fill(nan, Float.NaN); // every output element must be written
    in.add(floats(nan));
    float[] lseNan = new float[b * nq * h];
    Arrays.fill(lseNan, Float.NaN);
    in.add(floats(lseNan));
    List<ByteBuffer> out = emulation.run(launch.kernelName(), launch.gridX(), h, b,
        FlashLaunch.THREADS, launch.sharedBytes(),
        launch.arguments(0, 1, 2, 3, 4, scale * LOG2E, mask), in);

    // The reference sees exactly what the kernel sees: inputs rounded to the storage type.
    Tensor qr = rounded(q, type);
    Tensor kr = rounded(k, type);
    Tensor vr = rounded(v, type);
    Tensor expected = Tensor.zeros(s);
    float[] expectedLse = new float[b * nq * h];
    REF.forward(BlockView.of(qr), BlockView.of(kr), BlockView.of(vr), scale, mask,
        BlockView.of(expected), expectedLse);

    String what = launch.kernelName() + " " + mask + " shape " + Arrays.toString(s) + " nk=" + nk
        + " kvHeads=" + g;
    Tensor actual = Tensor.zeros(s);
    HostPacking.unpack(out.get(3).asFloatBuffer(), BlockView.of(actual));
    Accuracy.assertClose(actual.data(), expected.data(), tol + scoreError, what);
    float[] lse = toFloats(out.get(4));
    for (int i = 0; i < lse.length; i++) {
      if (expectedLse[i] == Float.NEGATIVE_INFINITY) {
        assertEquals(Float.NEGATIVE_INFINITY, lse[i], what + " lse " + i);
      } else {
        assertEquals(expectedLse[i], lse[i],
            tol * Math.max(1, Math.abs(expectedLse[i])) + scoreError, what + " lse " + i);
      }
    }
  }

  static Tensor rounded(Tensor t, GpuDtype type) {
    Tensor r = t.copy();
    float[] x = r.data();
    for (int i = 0; i < x.length; i++) {
      x[i] = type.round(x[i]);
    }
    return r;
  }

  static ByteBuffer floats(float[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return b;
  }

  static float[] toFloats(ByteBuffer b) {
    FloatBuffer f = b.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[] x = new float[f.remaining()];
    f.get(x);
    return x;
  }
}
