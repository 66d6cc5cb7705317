package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.VarlenSequences;
import dev.mosaic.test.RandomQkv;
import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The varlen tensor-core kernels ({@code mosaic_flash_tc_varlen_*} in flash_forward_tc.cu) in the
 * host emulation, launched as {@link TensorCoreLaunch#varlenArguments} describes, against the
 * per-sequence double-precision reference within the 16-bit rounding model's element-wise bound
 * ({@link TensorCoreReference}): cu_seqlens offsets, per-sequence causal masks, the key bound and
 * key padding, fp16 and bf16, odd head dims (element-wise loads) and multiples of 8 (cp.async).
 */
class TensorCoreVarlenEmulationTest {
  private static final Random SEEDS = TestSeed.random();
  // Odd lengths crossing tile edges, an empty sequence, different query and key lengths.
  private static final int[] Q_LENS = {1, 2, 17, 63, 65, 0, 130};
  private static final int[] K_LENS = {1, 5, 17, 70, 64, 3, 129};
  private static final int[] VALID = {1, 2, 0, 40, 64, 3, 100};
  private static HostEmulation emulation;

  @BeforeAll
  static void build() throws Exception {
    emulation = HostEmulation.buildOrSkip();
  }

  static VarlenSequences self() {
    return VarlenSequences.of(VarlenSequences.offsets(Q_LENS));
  }

  static VarlenSequences cross() {
    return new VarlenSequences(VarlenSequences.offsets(Q_LENS), VarlenSequences.offsets(K_LENS),
        null);
  }

  @Test
  void selfAttentionCausalPerSequence() throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(emulation, type, self(), 2, 2, 2, 24, AttentionMask.causalMask(), false);
      check(emulation, type, self(), 1, 1, 1, 33, AttentionMask.causalMask(), false);
    }
  }

  @Test
  void keyPaddingAndKeyBound() throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(emulation, type, self().withValidKeys(VALID), 1, 2, 2, 40, AttentionMask.NONE, false);
      check(emulation, type, cross().withValidKeys(VALID), 2, 1, 1, 8, AttentionMask.keyLimit(50),
          false);
    }
  }

  @Test
  void crossAttentionWithOffsetsOddHeadDims() throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(emulation, type, cross(), 1, 1, 1, 72, new AttentionMask(true, 10, 0, 90), false);
      check(emulation, type, cross(), 1, 1, 1, 127, AttentionMask.causalMask().at(0, 3), false);
    }
  }

  @Test
  void sixteenBitOutputOnRequest() throws Exception {
    for (GpuDtype type : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      check(emulation, type, cross().withValidKeys(VALID), 2, 2, 2, 20, AttentionMask.causalMask(),
          true);
    }
  }

  @Test
  void launchNamesAndArguments() {
    VarlenSequences seqs = self().withValidKeys(VALID);
    TensorCoreLaunch l = TensorCoreLaunch.of(GpuDtype.FP16, 3, seqs.totalQueries(),
        seqs.totalKeys(), 2, 100, true);
    assertEquals("mosaic_flash_tc_varlen_f16_d128", l.varlenKernelName());
    assertEquals(3 * 7, l.varlenGridZ(seqs));
    List<KernelArg> args = l.varlenArguments(0, 1, 2, 3, 4, 5, 6, 7, seqs, 1f,
        AttentionMask.NONE);
    assertEquals(28, args.size());
    assertEquals(1, args.get(16).asInt(), "hasValidKeys");
    assertEquals(1, args.get(27).asInt(), "outHalf");
    assertThrows(IllegalArgumentException.class, () -> TensorCoreLaunch.of(GpuDtype.BF16,
        70000, 1, 1, 1, 8, false).varlenGridZ(seqs));
  }

  /** One launch on {@code h} query heads and {@code g} K/V heads (g divides h; MHA: g = h). */
  static void check(HostEmulation emulation, GpuDtype type, VarlenSequences seqs, int b, int h,
      int g, int d, AttentionMask mask, boolean halfOutput) throws Exception {
    int nq = seqs.totalQueries();
    int nk = seqs.totalKeys();
    RandomQkv qkv = RandomQkv.draw(new Random(SEEDS.nextLong()), b, nq, nk, h, g, d).rounded(type);
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
    in.add(HostEmulation.ints(seqs.cuSeqlensQ()));
    in.add(HostEmulation.ints(seqs.cuSeqlensK()));
    in.add(HostEmulation.ints(seqs.validKeys() == null ? new int[1] : seqs.validKeys()));
    List<ByteBuffer> out = emulation.run(launch.varlenKernelName(),
        FlashLaunch.varlenGridX(seqs), h, launch.varlenGridZ(seqs), TensorCoreLaunch.THREADS,
        launch.sharedBytes(),
        launch.varlenArguments(0, 1, 2, 3, 4, 5, 6, 7, seqs, scale * HostEmulation.LOG2E, mask), in);

    float[] actual = ref.decode(out.get(3), q.size());
    float[] lse = HostEmulation.toFloats(out.get(4));
    String what = launch.varlenKernelName() + " " + mask + " " + seqs + " batch " + b
        + " heads " + h + "/" + g + (halfOutput ? " 16-bit out" : "");
    float[] expected = new float[q.size()];
    float[] expectedOnAbsV = new float[q.size()];
    int rows = 0;
    for (int s = 0; s < seqs.count(); s++) {
      AttentionMask m = seqs.mask(s, mask); // the sequence's own rows, its key padding folded in
      int keys = seqs.keys(s);
      int[] keyBase = new int[keys];
      boolean[] visible = new boolean[keys];
      for (int bi = 0; bi < b; bi++) {
        for (int i = 0; i < seqs.queries(s); i++) {
          for (int hi = 0; hi < h; hi++) {
            for (int j = 0; j < keys; j++) {
              keyBase[j] = ((bi * nk + seqs.keyStart(s) + j) * g
                  + AttentionKernel.kvHead(hi, h, g)) * d;
              visible[j] = !m.masks(i, j);
            }
            int row = (bi * nq + seqs.queryStart(s) + i) * h + hi;
            ref.checkRow(what + " sequence " + s + " row " + row, q.data(), row * d, k.data(),
                v.data(), keyBase, visible, d, scale, actual, lse[row], expected,
                expectedOnAbsV);
            rows++;
          }
        }
      }
    }
    assertEquals(b * nq * h, rows, "every packed row belongs to one sequence");
    assertTrue(ref.worst() <= 1, what);
  }
}
