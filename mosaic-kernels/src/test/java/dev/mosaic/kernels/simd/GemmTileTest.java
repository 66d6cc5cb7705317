package dev.mosaic.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Accuracy;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.KernelShapes;
import dev.mosaic.kernels.ReferenceAttention;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every register blocking of the SIMD GEMM against the scalar one, and the whole kernel with each
 * against the reference, on sizes that leave remainders in every direction. (The pom runs this
 * class a second time with AVX2's width and register file: -XX:UseAVX=2.)
 */
class GemmTileTest {
  private static final Random SEEDS = TestSeed.random();

  static List<GemmTile> allTiles() {
    List<GemmTile> tiles = new ArrayList<>();
    for (int r : GemmTile.ROW_SIZES) {
      for (int c : GemmTile.VECTOR_SIZES) {
        tiles.add(new GemmTile(r, c));
      }
    }
    return tiles;
  }

  static Stream<GemmTile> tiles() {
    return allTiles().stream();
  }

  @Test
  void choosesTheTileThatFitsTheRegisterFile() {
    assertEquals(new GemmTile(6, 2), GemmTile.choose(16, 8)); // AVX2: 12 + 2 + 1 = 15 live
    assertEquals(new GemmTile(6, 4), GemmTile.choose(32, 4)); // AVX-512: 24 + 4 + 1 = 29 live
    assertEquals(new GemmTile(6, 2), GemmTile.choose(16, 16)); // 128-bit lanes, 16 registers
  }

  @Test
  void parsesAndRejectsTiles() {
    assertEquals(new GemmTile(4, 3), GemmTile.parse("4x3"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> GemmTile.parse("5x2"));
    assertEquals("GEMM tile must be R x C with R in 8,6,4,2,1 and C in 4,3,2,1, got 5x2",
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> GemmTile.parse("wide"));
  }

  @ParameterizedTest(name = "tile {0}")
  @MethodSource("tiles")
  void gemmMatchesScalarOnRaggedSizes(GemmTile tile) {
    Random rnd = new Random(SEEDS.nextLong());
    PanamaFlashOps simd = new PanamaFlashOps(tile);
    ScalarFlashOps scalar = new ScalarFlashOps();
    int lanes = simd.lanes();
    for (int rows : new int[] {1, 5, 7, 13}) {
      for (int depth : new int[] {1, 3, 16, 37}) {
        for (int vectors : new int[] {1, 2, 3, 5, 7}) {
          int cols = vectors * lanes;
          int aStride = depth + 3; // rows of A and C padded, as the kernel's strided views are
          int cStride = cols + lanes;
          float[] a = Tensor.randn(rnd, 1f, 2 + rows * aStride).data();
          float[] b = Tensor.randn(rnd, 1f, 1 + depth * cols).data();
          for (boolean accumulate : new boolean[] {false, true}) {
            float[] c0 = Tensor.randn(rnd, 1f, 1 + rows * cStride).data();
            float[] expected = c0.clone();
            float[] got = c0.clone();
            scalar.gemm(a, 2, aStride, rows, depth, b, 1, cols, expected, 1, cStride, cols,
                accumulate);
            simd.gemm(a, 2, aStride, rows, depth, b, 1, cols, got, 1, cStride, cols, accumulate);
            // Same products, different summation order (FMA vs mul+add): depth roundings of
            // terms of size ~1 each, on sums of size ~sqrt(depth).
            double tol = 4 * (depth + 1) * Accuracy.FP32_U * Math.sqrt(depth + 1) * 8;
            for (int i = 0; i < got.length; i++) {
              assertEquals(expected[i], got[i], tol, () -> tile + " rows=" + rows + " depth="
                  + depth + " vectors=" + vectors + " acc=" + accumulate);
            }
          }
        }
      }
    }
  }

  static Stream<Arguments> tilesAndShapes() {
    List<Arguments> cases = new ArrayList<>();
    List<GemmTile> tiles = allTiles();
    // The shared odd shapes but the 1000 x 1037 one (its reference alone takes seconds; the
    // default tile runs it in CpuFlashAttentionTest). Each tile gets shapes i, i+3, ...
    List<Arguments> shapes = KernelShapes.common()
        .filter(a -> (int) a.get()[1] * (int) a.get()[2] < 100_000).toList();
    for (int t = 0; t < tiles.size(); t++) {
      for (int s = t % 3; s < shapes.size(); s += 3) {
        Object[] shape = shapes.get(s).get();
        cases.add(Arguments.of(tiles.get(t), shape[0], shape[1], shape[2], shape[3], shape[4]));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "tile {0} b={1} nq={2} nk={3} h={4} d={5}")
  @MethodSource("tilesAndShapes")
  void kernelWithEachTileMatchesTheReference(GemmTile tile, int b, int nq, int nk, int h,
      int d) {
    Random rnd = new Random(SEEDS.nextLong());
    Tensor q = Tensor.randn(rnd, 1f, b, nq, h, d);
    Tensor k = Tensor.randn(rnd, 1f, b, nk, h, d);
    Tensor v = Tensor.randn(rnd, 1f, b, nk, h, d);
    float scale = (float) (1 / Math.sqrt(d));
    for (AttentionMask mask : new AttentionMask[] {AttentionMask.NONE,
        AttentionMask.causalMask()}) {
      Tensor expected = Tensor.zeros(b, nq, h, d);
      float[] lseRef = new float[b * nq * h];
      new ReferenceAttention().forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale,
          mask, BlockView.of(expected), lseRef);
      try (CpuFlashAttention kernel = new CpuFlashAttention(2, new PanamaFlashOps(tile))) {
        Tensor out = Tensor.zeros(b, nq, h, d);
        float[] lse = new float[b * nq * h];
        kernel.forward(BlockView.of(q), BlockView.of(k), BlockView.of(v), scale, mask,
            BlockView.of(out), lse);
        Accuracy.assertClose(out.data(), expected.data(), 1e-5, tile + " " + mask);
        Accuracy.assertClose(lse, lseRef, 1e-5, tile + " lse " + mask);
      }
    }
  }
}
