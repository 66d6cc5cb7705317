package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.simd.ScalarFlashOps;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The varlen path against the per-sequence reference: each sequence copied into its own tensors
 * and run through {@link ReferenceAttention} (double precision), on odd lengths that cross tile
 * edges, with causal masks, a key bound, key padding and separate query/key offsets; SIMD (this
 * JVM's width, and AVX2's in the avx2-tiles run) and scalar ops.
 */
class VarlenAttentionTest {
  private static final double TOL = 1e-5;
  private static final Random SEEDS = TestSeed.random();
  private static final List<AttentionKernel> KERNELS = new ArrayList<>();
  private static final int[] ODD = {1, 2, 17, 63, 64, 65, 0, 130, 1, 3, 200};

  @BeforeAll
  static void kernels() {
    KERNELS.add(new CpuFlashAttention(1));
    KERNELS.add(new CpuFlashAttention(2));
    KERNELS.add(new CpuFlashAttention(3, new ScalarFlashOps()));
    KERNELS.add(new ReferenceAttention()); // the interface's per-sequence default
  }

  @AfterAll
  static void close() {
    KERNELS.forEach(AttentionKernel::close);
    KERNELS.clear();
  }

  @Test
  void selfAttentionWithoutMask() {
    check(ODD, ODD, null, 3, 16, AttentionMask.NONE);
  }

  @Test
  void causalPerSequence() {
    check(ODD, ODD, null, 2, 24, AttentionMask.causalMask());
  }

  @Test
  void keyBoundPerSequence() {
    check(ODD, ODD, null, 2, 8, AttentionMask.keyLimit(40));
    check(ODD, ODD, null, 1, 32, new AttentionMask(true, 5, 2, 50));
  }

  @Test
  void keyPaddingPerSequence() {
    int[] valid = new int[ODD.length];
    for (int s = 0; s < ODD.length; s++) {
      valid[s] = s % 3 == 0 ? ODD[s] : ODD[s] / 2; // includes 0 valid keys: rows see nothing
    }
    check(ODD, ODD, valid, 2, 16, AttentionMask.NONE);
    check(ODD, ODD, valid, 2, 16, AttentionMask.causalMask());
  }

  @Test
  void queriesAndKeysOfDifferentLengths() {
    int[] keys = {5, 1, 70, 3, 129, 64, 9, 0, 2, 17, 31};
    check(ODD, keys, null, 4, 40, AttentionMask.NONE);
    check(ODD, keys, null, 4, 40, new AttentionMask(true, 10, 0, Long.MAX_VALUE));
  }

  @Test
  void manyShortSequencesAndOneLong() {
    Random rnd = new Random(SEEDS.nextLong());
    int[] lengths = new int[60];
    for (int s = 0; s < lengths.length; s++) {
      lengths[s] = 1 + rnd.nextInt(20);
    }
    lengths[37] = 700;
    check(lengths, lengths, null, 2, 64, AttentionMask.causalMask());
  }

  @Test
  void batchOfFeaturesSharingThePacking() {
    // A table's rows: position-major (position, feature, head, dim), attention along positions
    // for each feature, so the batch (features) is strided inside a row, as the layer packs it.
    Random rnd = new Random(SEEDS.nextLong());
    int f = 3;
    int heads = 2;
    int d = 8;
    int[] lengths = {1, 17, 0, 65, 2};
    int[] cu = VarlenSequences.offsets(lengths);
    int n = cu[lengths.length];
    int row = f * heads * d;
    float[][] x = new float[3][];
    for (int i = 0; i < 3; i++) {
      x[i] = Tensor.randn(rnd, 1f, n, f, heads, d).data();
    }
    AttentionMask mask = AttentionMask.causalMask();
    float[] expected = new float[n * row];
    float[] lseRef = new float[f * n * heads];
    ReferenceAttention ref = new ReferenceAttention();
    for (int b = 0; b < f; b++) {
      for (int s = 0; s < lengths.length; s++) {
        int m = lengths[s];
        Tensor[] t = new Tensor[3];
        for (int i = 0; i < 3; i++) {
          t[i] = Tensor.zeros(m, heads, d);
          for (int p = 0; p < m; p++) {
            System.arraycopy(x[i], (cu[s] + p) * row + b * heads * d, t[i].data(),
                p * heads * d, heads * d);
          }
        }
        Tensor o = Tensor.zeros(m, heads, d);
        float[] l = new float[m * heads];
        ref.forward(BlockView.of(t[0]), BlockView.of(t[1]), BlockView.of(t[2]), 0.3f, mask,
            BlockView.of(o), l);
        for (int p = 0; p < m; p++) {
          System.arraycopy(o.data(), p * heads * d, expected, (cu[s] + p) * row + b * heads * d,
              heads * d);
        }
        System.arraycopy(l, 0, lseRef, (b * n + cu[s]) * heads, l.length);
      }
    }
    for (AttentionKernel kernel : KERNELS) {
      float[] out = new float[n * row];
      float[] lse = new float[f * n * heads];
      kernel.forwardVarlen(strided(x[0], f, n, heads, d), strided(x[1], f, n, heads, d),
          strided(x[2], f, n, heads, d), VarlenSequences.of(cu), 0.3f, mask,
          strided(out, f, n, heads, d), lse);
      Accuracy.assertClose(out, expected, TOL, kernel.name() + " batched");
      Accuracy.assertClose(lse, lseRef, TOL, kernel.name() + " batched lse");
    }
  }

  private static BlockView strided(float[] data, int f, int n, int heads, int d) {
    return new BlockView(data, 0, f, n, heads, d, f * heads * d, (long) heads * d);
  }

  @Test
  void outputDoesNotDependOnThreadCount() {
    Random rnd = new Random(SEEDS.nextLong());
    int[] lengths = {300, 5, 129, 1, 64, 1000};
    int[] cu = VarlenSequences.offsets(lengths);
    int n = cu[lengths.length];
    Tensor q = Tensor.randn(rnd, 1f, n, 2, 32);
    Tensor k = Tensor.randn(rnd, 1f, n, 2, 32);
    Tensor v = Tensor.randn(rnd, 1f, n, 2, 32);
    float[][] outs = new float[2][];
    float[][] lses = new float[2][];
    for (int i = 0; i < 2; i++) {
      Tensor out = Tensor.zeros(n, 2, 32);
      lses[i] = new float[n * 2];
      KERNELS.get(i).forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v),
          VarlenSequences.of(cu), 0.2f, AttentionMask.causalMask(), BlockView.of(out), lses[i]);
      outs[i] = out.data();
    }
    assertArrayEquals(outs[0], outs[1]);
    assertArrayEquals(lses[0], lses[1]);
  }

  @Test
  void badOffsetsAreOneLineErrors() {
    assertEquals("cuSeqlensQ[0] must be 0, got 2", assertThrows(IllegalArgumentException.class,
        () -> VarlenSequences.of(new int[] {2, 5})).getMessage());
    assertEquals("cuSeqlensQ must not decrease, got 5 then 4 at index 2",
        assertThrows(IllegalArgumentException.class,
            () -> VarlenSequences.of(new int[] {0, 5, 4})).getMessage());
    assertEquals("validKeys has 1 entries, expected one per sequence (2)",
        assertThrows(IllegalArgumentException.class,
            () -> VarlenSequences.of(new int[] {0, 5, 6}).withValidKeys(new int[] {1}))
            .getMessage());
    Tensor x = Tensor.zeros(6, 1, 8);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> KERNELS.get(0).forwardVarlen(BlockView.of(x), BlockView.of(x), BlockView.of(x),
            VarlenSequences.of(new int[] {0, 5}), 1f, AttentionMask.NONE,
            BlockView.of(Tensor.zeros(6, 1, 8)), new float[6]));
    assertEquals("cuSeqlensQ ends at 5, expected q's 6 rows", e.getMessage());
  }

  /** Random packed q/k/v for these lengths, every kernel against the per-sequence reference. */
  private static void check(int[] qLens, int[] kLens, int[] validKeys, int heads, int d,
      AttentionMask mask) {
    Random rnd = new Random(SEEDS.nextLong());
    VarlenSequences seqs = new VarlenSequences(VarlenSequences.offsets(qLens),
        VarlenSequences.offsets(kLens), validKeys);
    int nq = seqs.totalQueries();
    int nk = seqs.totalKeys();
    Tensor q = Tensor.randn(rnd, 1f, nq, heads, d);
    Tensor k = Tensor.randn(rnd, 1f, nk, heads, d);
    Tensor v = Tensor.randn(rnd, 1f, nk, heads, d);
    float scale = (float) (1 / Math.sqrt(d));
    float[] expected = new float[nq * heads * d];
    float[] lseRef = new float[nq * heads];
    perSequenceReference(q, k, v, seqs, scale, mask, expected, lseRef);
    for (AttentionKernel kernel : KERNELS) {
      Tensor out = Tensor.zeros(nq, heads, d);
      Arrays.fill(out.data(), Float.NaN);
      float[] lse = new float[nq * heads];
      Arrays.fill(lse, Float.NaN);
      kernel.forwardVarlen(BlockView.of(q), BlockView.of(k), BlockView.of(v), seqs, scale, mask,
          BlockView.of(out), lse);
      String what = kernel.name() + " " + mask + " " + seqs;
      Accuracy.assertClose(out.data(), expected, TOL, what);
      for (int i = 0; i < lse.length; i++) {
        if (lseRef[i] == Float.NEGATIVE_INFINITY) {
          assertEquals(Float.NEGATIVE_INFINITY, lse[i], what + " lse " + i);
        } else {
          assertEquals(lseRef[i], lse[i], TOL * Math.max(1, Math.abs(lseRef[i])),
              what + " lse " + i);
        }
      }
    }
  }

  /** Each sequence copied into tensors of its own, its key padding folded into the key bound. */
  private static void perSequenceReference(Tensor q, Tensor k, Tensor v, VarlenSequences seqs,
      float scale, AttentionMask mask, float[] out, float[] lse) {
    int heads = q.dim(1);
    int d = q.dim(2);
    int row = heads * d;
    ReferenceAttention ref = new ReferenceAttention();
    for (int s = 0; s < seqs.count(); s++) {
      int nq = seqs.queries(s);
      int nk = seqs.keys(s);
      if (nq == 0) {
        continue;
      }
      int q0 = seqs.queryStart(s);
      int k0 = seqs.keyStart(s);
      Tensor qs = Tensor.of(Arrays.copyOfRange(q.data(), q0 * row, (q0 + nq) * row), nq, heads, d);
      Tensor ks = Tensor.of(Arrays.copyOfRange(k.data(), k0 * row, (k0 + nk) * row), nk, heads, d);
      Tensor vs = Tensor.of(Arrays.copyOfRange(v.data(), k0 * row, (k0 + nk) * row), nk, heads, d);
      long limit = seqs.validKeys() == null ? mask.keyLimit()
          : Math.min(mask.keyLimit(), mask.keyOffset() + seqs.validKeys()[s]);
      AttentionMask ms =
          new AttentionMask(mask.causal(), mask.queryOffset(), mask.keyOffset(), limit);
      Tensor os = Tensor.zeros(nq, heads, d);
      float[] ls = new float[nq * heads];
      ref.forward(BlockView.of(qs), BlockView.of(ks), BlockView.of(vs), scale, ms,
          BlockView.of(os), ls);
      System.arraycopy(os.data(), 0, out, q0 * row, os.size());
      System.arraycopy(ls, 0, lse, q0 * heads, ls.length);
    }
  }
}
