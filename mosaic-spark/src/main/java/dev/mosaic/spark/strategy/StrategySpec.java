package dev.mosaic.spark.strategy;

import java.io.Serializable;

/**
 * Which distributed strategy to build in every task, with its shape. Zero sizes mean "derive":
 * the squarest grid for mesh2d, the ranks per executor host for hierarchical.
 *
 * @param backend one of {@link Backends#ALL}
 * @param meshRows mesh2d: grid rows R; composed: head-parallel size A
 * @param meshCols mesh2d: grid columns C; composed: sequence-parallel size B
 * @param intraNodeSize hierarchical: ranks per node
 * @param intra hierarchical: strategy inside a node ({@code ring} or {@code ulysses})
 * @param inter hierarchical and composed: strategy across nodes / groups ({@code ring} or
 *     {@code mesh2d})
 */
public record StrategySpec(String backend, int meshRows, int meshCols, int intraNodeSize,
    String intra, String inter) implements Serializable {

  public StrategySpec {
    Backends.check(backend);
    if (meshRows < 0 || meshCols < 0 || intraNodeSize < 0) {
      throw new IllegalArgumentException("mesh and node sizes must be positive");
    }
  }

  public static StrategySpec of(String backend) {
    return new StrategySpec(backend, 0, 0, 0, Backends.RING, Backends.RING);
  }

  public StrategySpec withMesh(int rows, int cols) {
    return new StrategySpec(backend, rows, cols, intraNodeSize, intra, inter);
  }

  public StrategySpec withNodes(int intraSize, String intraStrategy, String interStrategy) {
    return new StrategySpec(backend, meshRows, meshCols, intraSize, intraStrategy, interStrategy);
  }

  /** Checks the shape against p ranks and the head count before a job starts. */
  public void validate(int p, int heads) {
    switch (backend) {
      case Backends.MESH2D -> {
        if (meshRows > 0 && meshRows * meshCols != p) {
          throw new IllegalArgumentException("mesh2d grid " + meshRows + "x" + meshCols
              + " does not cover " + p + " ranks: rows·cols must equal the number of ranks");
        }
      }
      case Backends.ULYSSES -> UlyssesStrategy.checkHeads(heads, p);
      case Backends.COMPOSED -> {
        if (meshRows < 1 || meshRows * meshCols != p) {
          throw new IllegalArgumentException("composed needs --mesh AxB with A·B = " + p
              + " ranks (A = head-parallel size, B = sequence-parallel size), got " + meshRows
              + "x" + meshCols);
        }
        if (heads % meshRows != 0) {
          throw new IllegalArgumentException("composed splits heads " + meshRows + " ways, but"
              + " the head count (" + heads + ") is not divisible by " + meshRows);
        }
      }
      case Backends.HIERARCHICAL -> {
        if (intraNodeSize > 0 && p % intraNodeSize != 0) {
          throw new IllegalArgumentException("hierarchical attention needs nodes of equal size: "
              + p + " ranks cannot form nodes of " + intraNodeSize + " (use a divisor of " + p
              + ")");
        }
        if (!(intra.equals(Backends.RING) && inter.equals(Backends.RING))
            && !(intra.equals(Backends.ULYSSES)
                && (inter.equals(Backends.RING) || inter.equals(Backends.MESH2D)))) {
          throw new IllegalArgumentException("hierarchical supports intra/inter = ring/ring,"
              + " ulysses/ring or ulysses/mesh2d, not " + intra + "/" + inter);
        }
      }
      default -> { }
    }
  }

  @Override
  public String toString() {
    return switch (backend) {
      case Backends.MESH2D -> "mesh2d " + (meshRows == 0 ? "auto" : meshRows + "x" + meshCols);
      case Backends.COMPOSED -> "composed " + meshRows + "x" + meshCols + " (" + inter + ")";
      case Backends.HIERARCHICAL -> "hierarchical " + intra + "/" + inter + " nodes of "
          + (intraNodeSize == 0 ? "host size" : Integer.toString(intraNodeSize));
      default -> backend;
    };
  }
}
