package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.RandomQkv;
import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
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
 * The tensor-core kernel itself — flash_forward_tc.cu compiled by g++ with the host shim's
 * whole-fragment WMMA and deferred cp.async (src/main/cuda/emulation) — launched exactly as
 * {@link TensorCoreLaunch} describes, against a double-precision reference on the same rounded
 * inputs, within the element-wise bound of the 16-bit rounding model ({@link TensorCoreReference}).
 * The varlen kernels: {@link TensorCoreVarlenEmulationTest}.
 */
class TensorCoreKernelEmulationTest {
  private static final Random SEEDS = TestSeed.random();
  private static HostEmulation emulation;

  @BeforeAll
  static void build() throws Exception {
    emulation = HostEmulation.buildOrSkip();
  }

  static Stream<Arguments> shapes() {
    return Stream.of(
        // batch, seqQ, seqK, heads, headDim: every head-dim bucket, odd n and odd head dims
        // (d % 8 != 0 takes the element-wise loads instead of cp.async), several tiles
        Arguments.of(1, 1, 1, 1, 8),
        Arguments.of(2, 13, 70, 2, 24),
        Arguments.of(1, 67, 75, 2, 33),
        Arguments.of(1, 130, 70, 2, 40),
        Arguments.of(1, 70, 129, 1, 64),
        Arguments.of(1, 65, 66, 1, 127),
        Arguments.of(1, 9, 70, 1, 200));
  }

  @ParameterizedTest(name = "fp16/bf16 b={0} nq={1} nk={2} h={3} d={4}")
  @MethodSource("shapes")
  void matchesReferenceUnderEveryMask(int b, int nq, int nk, int h, int d) throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      for (AttentionMask mask : KernelHostEmulationTest.masks(nq, nk)) {
        check(emulation, type, b, nq, nk, h, h, d, mask, false, 1f);
      }
    }
  }

  @Test
  void sixteenBitOutputOnRequest() throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(emulation, type, 2, 70, 90, 2, 2, 64, AttentionMask.causalMask().at(20, 0), true, 1f);
      check(emulation, type, 1, 33, 40, 1, 1, 20, AttentionMask.NONE, true, 1f);
    }
  }

  @Test
  void largeScoresDoNotOverflow() throws Exception {
    // Scores in the hundreds: the running max must keep 2^(s - m) <= 1 before the 16-bit P.
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(emulation, type, 1, 100, 150, 2, 2, 32, AttentionMask.causalMask().at(60, 0), false,
          8f);
    }
  }

  @Test
  void launchGeometry() {
    TensorCoreLaunch l = TensorCoreLaunch.of(GpuDtype.BF16, 2, 130, 70, 3, 40, false);
    assertEquals("mosaic_flash_tc_bf16_d64", l.kernelName());
    assertEquals(3, l.gridX());
    assertEquals(71680, l.sharedBytes());
    assertEquals(112640, TensorCoreLaunch.sharedBytes(128));
    assertEquals(640 * 256 + 30720, TensorCoreLaunch.sharedBytes(256));
    assertEquals(24, l.arguments(0, 1, 2, 3, 4, 1f, AttentionMask.NONE).size());
  }

  /** One launch on {@code h} query heads and {@code g} K/V heads (g divides h; MHA: g = h). */
  static void check(HostEmulation emulation, GpuDtype type, int b, int nq, int nk, int h, int g,
      int d, AttentionMask mask, boolean halfOutput, float std) throws Exception {
    RandomQkv qkv =
        RandomQkv.draw(new Random(SEEDS.nextLong()), std, b, nq, nk, h, g, d).rounded(type);
    Tensor q = qkv.q();
    Tensor k = qkv.k();
    Tensor v = qkv.v();
    float scale = (float) (1 / Math.sqrt(d));
    TensorCoreLaunch launch = TensorCoreLaunch.of(type, b, nq, nk, h, g, d, halfOutput);
    TensorCoreReference ref = new TensorCoreReference(type, halfOutput);

    List<ByteBuffer> in = new ArrayList<>();
    for (Tensor t : new Tensor[] {q, k, v}) {
      in.add(TensorCoreReference.packed(t, type));
    }
    in.add(ref.nanOutput(q.size()));
    in.add(HostEmulation.nans(b * nq * h));
    List<ByteBuffer> out = emulation.run(launch.kernelName(), launch.gridX(), h, b,
        TensorCoreLaunch.THREADS, launch.sharedBytes(),
        launch.arguments(0, 1, 2, 3, 4, scale * HostEmulation.LOG2E, mask), in);

    float[] actual = ref.decode(out.get(3), q.size());
    float[] lse = HostEmulation.toFloats(out.get(4));
    String what = launch.kernelName() + " " + mask + " shape " + Arrays.toString(q.shape())
        + " nk=" + nk + " kvHeads=" + g + (halfOutput ? " 16-bit out" : "");
    float[] expected = new float[q.size()];
    float[] expectedOnAbsV = new float[q.size()];
    int[] keyBase = new int[nk];
    boolean[] visible = new boolean[nk];
    for (int bi = 0; bi < b; bi++) {
      for (int i = 0; i < nq; i++) {
        for (int hi = 0; hi < h; hi++) {
          for (int j = 0; j < nk; j++) {
            keyBase[j] = ((bi * nk + j) * g + AttentionKernel.kvHead(hi, h, g)) * d;
            visible[j] = !mask.masks(i, j);
          }
          int row = (bi * nq + i) * h + hi;
          ref.checkRow(what + " row " + row, q.data(), row * d, k.data(), v.data(), keyBase,
              visible, d, scale, actual, lse[row], expected, expectedOnAbsV);
        }
      }
    }
    assertTrue(ref.worst() <= 1, what);
    if (!halfOutput) {
      // The norm-wise tolerance selftest and the GPU tests use holds as well.
      double maxAbsV = 0;
      for (float x : v.data()) {
        maxAbsV = Math.max(maxAbsV, Math.abs(x));
      }
      double tol = TensorCoreTolerance.relative(type, TensorCoreReference.FP32_REL, expected,
          expectedOnAbsV, maxAbsV, nk);
      double err = dev.mosaic.kernels.RelativeError.of(actual, expected);
      assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
    }
  }
}
