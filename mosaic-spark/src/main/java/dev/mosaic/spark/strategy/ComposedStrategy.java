package dev.mosaic.spark.strategy;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.spark.comm.Communicator;

/**
 * Head parallel × sequence parallel on a mesh {@code (A, B)} of p = A·B ranks, rank
 * {@code = b·A + a}: heads split A ways inside each head group (the A consecutive ranks with the
 * same b — put them on one node), the sequence B ways across groups. An all-to-all inside the
 * head group gives every rank its H/A heads for all of the group's rows; a ring (or any sequence
 * strategy) across the B groups — over the ranks with the same a — attends those rows to the
 * whole sequence; an all-to-all back returns each rank its own rows with all heads. The groups
 * are the ones the design names: the seed's code ringed over the head group instead.
 */
public final class ComposedStrategy implements Strategy {
  private final Communicator headComm;
  private final Communicator seqComm;
  private final ShardLayout layout;
  private final ShardLayout groupLayout;
  private final Strategy seqStrategy;
  private final int headWays;
  private final int rank;

  /**
   * Collective: splits {@code comm} into head groups and sequence groups.
   *
   * @param headWays A, the head-parallel size (divides the head count and p)
   * @param seqBackend the strategy across groups: {@code ring} or {@code mesh2d}
   */
  public ComposedStrategy(Communicator comm, ShardLayout layout, int headWays, String seqBackend,
      AttentionKernel kernel) {
    int p = comm.size();
    if (headWays < 1 || p % headWays != 0) {
      throw new IllegalArgumentException("composed mesh (" + headWays + ", ?) does not fit " + p
          + " ranks: the head-parallel size must divide the number of ranks");
    }
    Blocks.checkLayout(layout, p);
    this.rank = comm.rank();
    this.headWays = headWays;
    this.layout = layout;
    this.groupLayout = layout.grouped(headWays);
    int a = rank % headWays;
    int b = rank / headWays;
    this.headComm = comm.split(b, a);
    this.seqComm = comm.split(a, b);
    this.seqStrategy = switch (seqBackend) {
      case Backends.RING -> new RingStrategy(seqComm, groupLayout, kernel);
      case Backends.MESH2D -> {
        int[] grid = Mesh2dStrategy.squarestGrid(seqComm.size());
        yield new Mesh2dStrategy(seqComm, groupLayout, grid[0], grid[1], kernel);
      }
      default -> throw new IllegalArgumentException("composed attention runs ring or mesh2d"
          + " across groups, not '" + seqBackend + "'");
    };
  }

  /**
   * Payload bytes rank {@code rank} sends during one {@link #attend}: the head all-to-all
   * ({@code 3·b·n_rank·g·d} floats to each of the A−1 peers, g = H/A), the way back (each peer's
   * rows of our g heads), and the sequence strategy's traffic over the group layout with g heads.
   * Returned as {head group, sequence group}.
   */
  public static long[] bytesSent(ShardLayout layout, int headWays, String seqBackend, int rank,
      int batch, int heads, int headDim, AttentionMask mask) {
    int g = heads / headWays;
    int a = rank % headWays;
    int base = rank - a;
    long floats = 3L * batch * layout.size(rank) * g * headDim * (headWays - 1);
    for (int j = 0; j < headWays; j++) {
      if (j != a) {
        floats += (long) batch * layout.size(base + j) * g * headDim;
      }
    }
    ShardLayout groups = layout.grouped(headWays);
    int b = rank / headWays;
    long seq = seqBackend.equals(Backends.MESH2D)
        ? Mesh2dStrategy.bytesSent(groups, Mesh2dStrategy.squarestGrid(groups.parts())[0],
            Mesh2dStrategy.squarestGrid(groups.parts())[1], b, batch, g, headDim, mask)
        : RingStrategy.bytesSent(groups, b, batch, g, headDim);
    return new long[] {4 * floats, seq};
  }

  @Override
  public String name() {
    return "composed(heads " + headWays + " x " + seqStrategy.name() + ")";
  }

  @Override
  public void attend(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out) {
    int heads = q.heads();
    if (heads % headWays != 0) {
      throw new IllegalArgumentException("composed attention splits heads " + headWays
          + " ways, but the head count (" + heads + ") is not divisible by " + headWays);
    }
    Blocks.checkShard(layout, rank, q, k, v, out);
    int batch = q.batch();
    int g = heads / headWays;
    int d = q.headDim();
    int mine = layout.size(rank);
    int groupBase = (rank / headWays) * headWays;

    // Our rows' heads [j·g, (j+1)·g) go to head-group peer j.
    float[][] send = Blocks.splitHeads(q, k, v, headWays, g);
    float[][] got = headComm.allToAll(send);

    // The group's rows for our g heads, in the group layout's order (peer by peer).
    int rows = groupLayout.size(rank / headWays);
    int all = Blocks.floats(batch, rows, g, d);
    float[] qkv = new float[3 * all];
    int at = 0;
    for (int j = 0; j < headWays; j++) {
      int r = layout.size(groupBase + j);
      int part = Blocks.floats(batch, r, g, d);
      for (int t = 0; t < 3; t++) {
        Blocks.copy(Blocks.view(got[j], t * part, batch, r, g, d), 0,
            Blocks.view(qkv, t * all, batch, rows, g, d).rows(at, r), 0, g);
      }
      at += r;
    }
    float[] o = new float[all];
    BlockView oGroup = Blocks.view(o, 0, batch, rows, g, d);
    seqStrategy.attend(Blocks.view(qkv, 0, batch, rows, g, d),
        Blocks.view(qkv, all, batch, rows, g, d), Blocks.view(qkv, 2 * all, batch, rows, g, d),
        scale, mask, oGroup);

    // Each peer gets its rows of our heads back.
    float[][] back = new float[headWays][];
    at = 0;
    for (int j = 0; j < headWays; j++) {
      int r = layout.size(groupBase + j);
      back[j] = new float[Blocks.floats(batch, r, g, d)];
      Blocks.copy(oGroup.rows(at, r), 0, Blocks.view(back[j], 0, batch, r, g, d), 0, g);
      at += r;
    }
    float[][] outs = headComm.allToAll(back);
    for (int j = 0; j < headWays; j++) {
      Blocks.copy(Blocks.view(outs[j], 0, batch, mine, g, d), 0, out, j * g, g);
    }
  }

  @Override
  public void close() {
    seqStrategy.close();
  }
}
