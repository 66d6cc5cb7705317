package dev.mosaic.kernels.simd;

/**
 * The register blocking of the SIMD GEMM: {@code rows} rows of A times {@code vectors} vectors of
 * B per micro-kernel, so {@code rows·vectors} accumulators live in registers next to the
 * {@code vectors} loaded B vectors and one broadcast A value. Chosen once from the vector width and
 * the register file ({@link #choose}); {@code -Dmosaic.simd.tile=RxC} forces one.
 */
public record GemmTile(int rows, int vectors) {
  /** Row and column counts the generated micro-kernels exist for (PanamaGemmBlocks). */
  static final int[] ROW_SIZES = {8, 6, 4, 2, 1};
  static final int[] VECTOR_SIZES = {4, 3, 2, 1};

  public GemmTile {
    if (indexOf(ROW_SIZES, rows) < 0 || indexOf(VECTOR_SIZES, vectors) < 0) {
      throw new IllegalArgumentException("GEMM tile must be R x C with R in 8,6,4,2,1 and C in"
          + " 4,3,2,1, got " + rows + "x" + vectors);
    }
  }

  /** Parses {@code "6x4"}. */
  public static GemmTile parse(String s) {
    String[] p = s.trim().toLowerCase().split("x");
    try {
      if (p.length == 2) {
        return new GemmTile(Integer.parseInt(p[0]), Integer.parseInt(p[1]));
      }
    } catch (NumberFormatException e) {
      // fall through to the message below
    }
    throw new IllegalArgumentException("mosaic.simd.tile must look like 6x4 (rows x vectors), got '"
        + s + "'");
  }

  /**
   * The tile for {@code registers} vector registers and a query tile of {@code widthVectors}
   * vectors: the most FMAs per loaded value ({@code R·C / (R + C)}) whose accumulators, B vectors
   * and broadcast fit with one register to spare. AVX2 (16 registers): 6x2 (15 live); AVX-512
   * (32): 6x4 (29 live). The old 4x4 needs 21, which spills on AVX2.
   */
  public static GemmTile choose(int registers, int widthVectors) {
    GemmTile best = new GemmTile(1, 1);
    double bestRatio = 0;
    for (int r : ROW_SIZES) {
      for (int c : VECTOR_SIZES) {
        double ratio = (double) r * c / (r + c);
        if (r * c + c + 1 <= registers - 1 && c <= widthVectors && ratio > bestRatio) {
          best = new GemmTile(r, c);
          bestRatio = ratio;
        }
      }
    }
    return best;
  }

  /** The largest supported row count not above {@code n}. */
  static int rowsAtMost(int n) {
    return atMost(ROW_SIZES, n);
  }

  /** The largest supported vector count not above {@code n}. */
  static int vectorsAtMost(int n) {
    return atMost(VECTOR_SIZES, n);
  }

  private static int atMost(int[] sizes, int n) {
    for (int s : sizes) {
      if (s <= n) {
        return s;
      }
    }
    return 0;
  }

  private static int indexOf(int[] a, int x) {
    for (int i = 0; i < a.length; i++) {
      if (a[i] == x) {
        return i;
      }
    }
    return -1;
  }

  @Override
  public String toString() {
    return rows + "x" + vectors;
  }
}
