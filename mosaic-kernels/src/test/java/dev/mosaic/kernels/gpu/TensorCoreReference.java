package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;

/**
 * The oracle of the tensor-core emulation tests (plain and varlen): a double-precision softmax
 * row on the same rounded inputs, and the element-wise error bound from the 16-bit rounding model:
 *
 * <p>The kernel's only rounding beyond fp32 is P: each probability {@code p_j ≤ 1} is stored in
 * the input type before P·V, so {@code |p̃_j − p_j| ≤ u·p_j + η} with u the unit roundoff
 * (2^-11 fp16, 2^-8 bf16) and η the absolute error below the smallest normal (2^-25 for fp16
 * subnormals, 0 for bf16, whose range is fp32's). Divided by {@code l ≥ 1} (the row max
 * contributes 2^0), output element c moves by at most {@code u·Σ w_j|v_jc| + η·Σ_j |v_jc|}, w the
 * softmax weights. The fp32 part (scores, exp2, sums) gets the fp32 kernel's 1e-5 relative, on
 * the same scale {@code Σ w_j|v_jc|}. The log-sum-exp uses the fp32 probabilities and gets 1e-5. A
 * 16-bit output adds one more rounding: {@code u·|o_c| + η}.
 */
final class TensorCoreReference {
  static final double FP32_REL = 1e-5;

  private final GpuDtype type;
  private final boolean halfOutput;
  private final double u;
  private final double eta;
  /** The largest observed error over its bound so far (at most 1 when every row passed). */
  private double worst;

  TensorCoreReference(GpuDtype type, boolean halfOutput) {
    this.type = type;
    this.halfOutput = halfOutput;
    this.u = TensorCoreTolerance.unitRoundoff(type);
    this.eta = TensorCoreTolerance.subnormalError(type);
  }

  double worst() {
    return worst;
  }

  /**
   * Checks one (batch, query, head) row of {@code d} elements: the query at {@code q[qBase..]},
   * key j at {@code k[keyBase[j]..]} / {@code v[keyBase[j]..]} where {@code visible[j]}; the
   * kernel's output at {@code actual[qBase..]} and its log-sum-exp {@code actualLse}. Writes the
   * expected row and the row on |V| into {@code expected} / {@code expectedOnAbsV} at qBase.
   */
  void checkRow(String what, float[] q, int qBase, float[] k, float[] v, int[] keyBase,
      boolean[] visible, int d, float scale, float[] actual, float actualLse, float[] expected,
      float[] expectedOnAbsV) {
    int nk = keyBase.length;
    double[] w = new double[nk];
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < nk; j++) {
      w[j] = Double.NEGATIVE_INFINITY;
      if (visible[j]) {
        double s = 0;
        for (int c = 0; c < d; c++) {
          s += (double) q[qBase + c] * k[keyBase[j] + c];
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
    if (sum == 0) {
      assertEquals(Float.NEGATIVE_INFINITY, actualLse, what + " lse of a fully masked row");
    } else {
      double lse = max + Math.log(sum);
      assertEquals(lse, actualLse, FP32_REL * Math.max(1, Math.abs(lse)), what + " lse");
    }
    for (int c = 0; c < d; c++) {
      double o = 0;
      double weightedAbs = 0;
      double abs = 0;
      for (int j = 0; j < nk; j++) {
        if (w[j] > 0) {
          double vj = v[keyBase[j] + c];
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

  /** {@code t} packed contiguous in {@code type}, as the kernel reads it. */
  static ByteBuffer packed(Tensor t, GpuDtype type) {
    ByteBuffer buf = ByteBuffer.allocate((int) HostPacking.packedBytes(BlockView.of(t), type))
        .order(ByteOrder.LITTLE_ENDIAN);
    HostPacking.pack(BlockView.of(t), type, buf);
    return buf;
  }

  /** An output buffer of {@code n} elements, all NaN: every element must be written. */
  ByteBuffer nanOutput(int n) {
    ByteBuffer out = ByteBuffer.allocate(n * (halfOutput ? 2 : 4)).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      if (halfOutput) {
        out.putShort(type == GpuDtype.FP16 ? (short) 0x7e00 : (short) 0x7fc0);
      } else {
        out.putFloat(Float.NaN);
      }
    }
    return out.flip();
  }

  /** The kernel's output as floats (widened exactly from a 16-bit output). */
  float[] decode(ByteBuffer out, int n) {
    if (!halfOutput) {
      return HostEmulation.toFloats(out);
    }
    float[] x = new float[n];
    ShortBuffer s = out.duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    for (int i = 0; i < n; i++) {
      x[i] = type == GpuDtype.FP16 ? GpuDtype.halfToFloat(s.get(i))
          : GpuDtype.bf16ToFloat(s.get(i));
    }
    return x;
  }
}
