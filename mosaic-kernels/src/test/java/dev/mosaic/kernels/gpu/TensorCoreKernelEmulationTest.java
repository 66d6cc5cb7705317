package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
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
 * The tensor-core kernel itself — flash_forward_tc.cu compiled by g++ with the host shim's
 * whole-fragment WMMA and deferred cp.async (src/main/cuda/emulation) — launched exactly as
 * {@link TensorCoreLaunch} describes, against a double-precision reference on the same rounded
 * inputs, with an element-wise error bound from the 16-bit rounding model:
 *
 * <p>The kernel's only rounding beyond fp32 is P: each probability {@code p_j ≤ 1} is stored in
 * the input type before P·V, so {@code |p̃_j − p_j| ≤ u·p_j + η} with u the unit roundoff
 * (2^-11 fp16, 2^-8 bf16) and η the absolute error below the smallest normal (2^-25 for fp16
 * subnormals, 0 for bf16, whose range is fp32's). Divided by {@code l ≥ 1} (the row max
 * contributes 2^0), output element c moves by at most {@code u·Σ w_j|v_jc| + η·Σ_j |v_jc|}, w the
 * softmax weights. The fp32 part (scores, exp2, sums) gets the fp32 kernel's 1e-5 relative, on the
 * same scale {@code Σ w_j|v_jc|}. The log-sum-exp uses the fp32 probabilities and gets 1e-5. A
 * 16-bit output adds one more rounding: {@code u·|o_c| + η}.
 */
class TensorCoreKernelEmulationTest {
  private static final Random SEEDS = TestSeed.random();
  private static final float LOG2E = (float) (1.0 / Math.log(2));
  private static final double FP32_REL = 1e-5;
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
        check(type, b, nq, nk, h, d, mask, false, 1f);
      }
    }
  }

  @Test
  void sixteenBitOutputOnRequest() throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(type, 2, 70, 90, 2, 64, AttentionMask.causalMask().at(20, 0), true, 1f);
      check(type, 1, 33, 40, 1, 20, AttentionMask.NONE, true, 1f);
    }
  }

  @Test
  void largeScoresDoNotOverflow() throws Exception {
    // Scores in the hundreds: the running max must keep 2^(s - m) <= 1 before the 16-bit P.
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(type, 1, 100, 150, 2, 32, AttentionMask.causalMask().at(60, 0), false, 8f);
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
    assertEquals(23, l.arguments(0, 1, 2, 3, 4, 1f, AttentionMask.NONE).size());
  }

  private static void check(GpuDtype type, int b, int nq, int nk, int h, int d,
      AttentionMask mask, boolean halfOutput, float std) throws Exception {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = KernelHostEmulationTest.rounded(Tensor.randn(rnd, std, b, nq, h, d), type);
    Tensor k = KernelHostEmulationTest.rounded(Tensor.randn(rnd, std, b, nk, h, d), type);
    Tensor v = KernelHostEmulationTest.rounded(Tensor.randn(rnd, 1f, b, nk, h, d), type);
    float scale = (float) (1 / Math.sqrt(d));
    TensorCoreLaunch launch = TensorCoreLaunch.of(type, b, nq, nk, h, d, halfOutput);

    List<ByteBuffer> in = new ArrayList<>();
    for (Tensor t : new Tensor[] {q, k, v}) {
      ByteBuffer buf = ByteBuffer.allocate((int) HostPacking.packedBytes(BlockView.of(t), type))
          .order(ByteOrder.LITTLE_ENDIAN);
      HostPacking.pack(BlockView.of(t), type, buf);
      in.add(buf);
    }
    // Every output element must be written: NaN until then.
    ByteBuffer outBuf = ByteBuffer.allocate(q.size() * launch.outputBytes())
        .order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < q.size(); i++) {
      if (halfOutput) {
        outBuf.putShort(type == GpuDtype.FP16 ? (short) 0x7e00 : (short) 0x7fc0);
      } else {
        outBuf.putFloat(Float.NaN);
      }
    }
    outBuf.flip();
    in.add(outBuf);
    float[] lseNan = new float[b * nq * h];
    Arrays.fill(lseNan, Float.NaN);
    in.add(KernelHostEmulationTest.floats(lseNan));
    List<ByteBuffer> out = emulation.run(launch.kernelName(), launch.gridX(), h, b,
        TensorCoreLaunch.THREADS, launch.sharedBytes(),
        launch.arguments(0, 1, 2, 3, 4, scale * LOG2E, mask), in);

    float[] actual = new float[q.size()];
    if (halfOutput) {
      ShortBuffer s = out.get(3).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
      for (int i = 0; i < actual.length; i++) {
        actual[i] = type == GpuDtype.FP16 ? GpuDtype.halfToFloat(s.get(i))
            : GpuDtype.bf16ToFloat(s.get(i));
      }
    } else {
      actual = KernelHostEmulationTest.toFloats(out.get(3));
    }
    float[] lse = KernelHostEmulationTest.toFloats(out.get(4));
    double u = type == GpuDtype.FP16 ? 0x1p-11 : 0x1p-8;
    double eta = type == GpuDtype.FP16 ? 0x1p-25 : 0;
    String what = launch.kernelName() + " " + mask + " shape " + Arrays.toString(q.shape())
        + " nk=" + nk + (halfOutput ? " 16-bit out" : "");

    float[] qd = q.data();
    float[] kd = k.data();
    float[] vd = v.data();
    double[] w = new double[nk];
    double worst = 0;
    float[] expected = new float[q.size()];
    float[] expectedOnAbsV = new float[q.size()];
    double maxAbsV = 0;
    for (float x : vd) {
      maxAbsV = Math.max(maxAbsV, Math.abs(x));
    }
    for (int bi = 0; bi < b; bi++) {
      for (int i = 0; i < nq; i++) {
        for (int hi = 0; hi < h; hi++) {
          int qBase = ((bi * nq + i) * h + hi) * d;
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < nk; j++) {
            w[j] = Double.NEGATIVE_INFINITY;
            if (!mask.masks(i, j)) {
              int kBase = ((bi * nk + j) * h + hi) * d;
              double s = 0;
              for (int c = 0; c < d; c++) {
                s += (double) qd[qBase + c] * kd[kBase + c];
              }
              w[j] = s * scale;
              max = Math.max(max, w[j]);
            }
          }
          double sum = 0;
          for (int j = 0; j < nk; j++) {
            w[j] = w[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(w[j] - max);
            sum += w[j];
          }
          int row = (bi * nq + i) * h + hi;
          if (sum == 0) {
            assertEquals(Float.NEGATIVE_INFINITY, lse[row], what + " lse of a fully masked row");
          } else {
            double expectedLse = max + Math.log(sum);
            assertEquals(expectedLse, lse[row], FP32_REL * Math.max(1, Math.abs(expectedLse)),
                what + " lse " + row);
          }
          for (int c = 0; c < d; c++) {
            double o = 0;
            double weightedAbs = 0;
            double abs = 0;
            for (int j = 0; j < nk; j++) {
              double vj = vd[((bi * nk + j) * h + hi) * d + c];
              if (w[j] > 0) {
                o += w[j] / sum * vj;
                weightedAbs += w[j] / sum * Math.abs(vj);
                abs += Math.abs(vj);
              }
            }
            expected[qBase + c] = (float) o;
            expectedOnAbsV[qBase + c] = (float) weightedAbs;
            double bound = (u + FP32_REL) * weightedAbs + eta * abs + 1e-7;
            if (halfOutput) {
              bound += u * Math.abs(o) + eta;
            }
            double err = Math.abs(actual[qBase + c] - o);
            if (!(err <= bound)) {
              fail(what + " out[" + (qBase + c) + "] = " + actual[qBase + c] + ", expected " + o
                  + " within " + bound);
            }
            worst = Math.max(worst, err / bound);
          }
        }
      }
    }
    assertTrue(worst <= 1, what);
    if (!halfOutput) {
      // The norm-wise tolerance selftest and the GPU tests use holds as well.
      double tol = TensorCoreTolerance.relative(type, FP32_REL, expected, expectedOnAbsV, maxAbsV,
          nk);
      double err = dev.mosaic.kernels.RelativeError.of(actual, expected);
      assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
    }
  }
}
