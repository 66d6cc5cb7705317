package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;

/**
 * {@link TableStats} of a table whose rows are sharded over the ranks of a communicator, equal
 * to {@link TableStats#ofTrainRows} on the whole table to fp32 rounding. Two passes, as PyTorch
 * computes them: every rank sums its train rows, the sums are gathered and added in rank order
 * (the mean), then every rank sums its squared deviations from that fp32 mean (the population
 * std). Partial sums travel as exact doubles: the communicator carries floats, so each double is
 * sent as four floats holding 16 bits of its raw bits each (an fp32 partial sum would lose the
 * digits that a column scaled by 1e6 needs).
 */
public final class ShardedTableStats {
  /** Floats per double on the wire. */
  private static final int CHUNKS = 4;

  private ShardedTableStats() {}

  /**
   * Collective: every rank calls it with its shard. The shard's rows are the table's rows
   * {@code rowOffset .. rowOffset + xShard.rows − 1}; the table's first {@code nTrain} rows are
   * its train rows.
   *
   * @param yShard labels of the shard's rows; read only for its train rows
   */
  public static TableStats reduce(Communicator comm, Tensor xShard, float[] yShard,
      long rowOffset, long nTrain) {
    if (xShard.rank() != 2 || xShard.dim(1) < 1) {
      throw new IllegalArgumentException("xShard must be [rows, features] with features >= 1,"
          + " got " + xShard);
    }
    int features = xShard.dim(1);
    int train = trainRows(xShard.dim(0), rowOffset, nTrain);
    if (yShard.length < train) {
      throw new IllegalArgumentException("yShard has " + yShard.length + " labels, expected at"
          + " least " + train + " (the shard's train rows)");
    }
    float[] x = xShard.data();
    // Pass 1: [train rows, features, label sum, per-feature sums].
    double[] part = new double[3 + features];
    part[0] = train;
    part[1] = features;
    for (int r = 0; r < train; r++) {
      if (!Float.isFinite(yShard[r])) {
        throw new IllegalArgumentException("y_train must be finite, got " + yShard[r] + " at row "
            + (rowOffset + r));
      }
      part[2] += yShard[r];
      for (int c = 0; c < features; c++) {
        part[3 + c] += x[r * features + c];
      }
    }
    double[] total = sumOverRanks(comm, part, "feature sums");
    if (total[0] != nTrain) {
      throw new IllegalStateException("the shards hold " + (long) total[0] + " train rows in all,"
          + " expected nTrain = " + nTrain);
    }
    float[] mean = new float[features];
    for (int c = 0; c < features; c++) {
      mean[c] = (float) (total[3 + c] / nTrain);
    }
    float labelMean = (float) (total[2] / nTrain);
    // Pass 2: squared deviations from the fp32 mean, as TableStats.ofTrainRows computes them.
    double[] sq = new double[features];
    for (int r = 0; r < train; r++) {
      for (int c = 0; c < features; c++) {
        double d = x[r * features + c] - (double) mean[c];
        sq[c] += d * d;
      }
    }
    double[] sqTotal = sumOverRanks(comm, sq, "squared deviations");
    float[] scale = new float[features];
    for (int c = 0; c < features; c++) {
      scale[c] = FeatureStandardizer.scale(Math.sqrt(sqTotal[c] / nTrain));
    }
    return new TableStats(mean, scale, labelMean, nTrain);
  }

  /**
   * Collective: the largest train label over all ranks' shards, or −∞ when the table has none
   * (every rank's shard as in {@link #reduce}).
   */
  public static float maxTrainLabel(Communicator comm, float[] yShard, int shardRows,
      long rowOffset, long nTrain) {
    int train = trainRows(shardRows, rowOffset, nTrain);
    float[] max = {Float.NEGATIVE_INFINITY};
    for (int r = 0; r < train; r++) {
      max[0] = Math.max(max[0], yShard[r]);
    }
    comm.allReduce(max, Communicator.ReduceOp.MAX);
    return max[0];
  }

  /** How many of a shard's rows are train rows (its first ones). */
  static int trainRows(int shardRows, long rowOffset, long nTrain) {
    return (int) Math.max(0, Math.min(shardRows, nTrain - rowOffset));
  }

  /**
   * Element-wise sums of every rank's {@code part}, added in rank order (so every rank gets the
   * same doubles); every rank must send the same length, else this fails naming {@code what}.
   */
  static double[] sumOverRanks(Communicator comm, double[] part, String what) {
    float[][] all = comm.allGather(encode(part));
    double[] total = new double[part.length];
    for (int r = 0; r < all.length; r++) {
      if (all[r].length != all[comm.rank()].length) {
        throw new IllegalArgumentException("rank " + r + " sent " + all[r].length / CHUNKS + " "
            + what + ", rank " + comm.rank() + " " + part.length
            + ": every shard must have the same number of features");
      }
      double[] d = decode(all[r]);
      for (int i = 0; i < d.length; i++) {
        total[i] += d[i];
      }
    }
    return total;
  }

  /** Each double as four floats, each an integer 0..65535 (exact in fp32) of its raw bits. */
  static float[] encode(double[] values) {
    float[] out = new float[values.length * CHUNKS];
    for (int i = 0; i < values.length; i++) {
      long bits = Double.doubleToRawLongBits(values[i]);
      for (int k = 0; k < CHUNKS; k++) {
        out[i * CHUNKS + k] = (bits >>> (16 * k)) & 0xFFFF;
      }
    }
    return out;
  }

  static double[] decode(float[] chunks) {
    double[] out = new double[chunks.length / CHUNKS];
    for (int i = 0; i < out.length; i++) {
      long bits = 0;
      for (int k = 0; k < CHUNKS; k++) {
        bits |= ((long) chunks[i * CHUNKS + k]) << (16 * k);
      }
      out[i] = Double.longBitsToDouble(bits);
    }
    return out;
  }
}
