package dev.mosaic.spark.train;

import java.io.Serializable;

/**
 * What one pretraining step did, as rank 0 saw it (every rank sees the same loss and norm after
 * the all-reduce).
 *
 * @param step the 0-based step index
 * @param loss the batch's mean test-row cross-entropy, before the update
 * @param gradNorm the global L2 norm of the mean gradient before clipping
 * @param lr the learning rate the step used
 * @param seconds the step's wall time on rank 0 (drawing tables, forward, backward, all-reduce,
 *     update)
 * @param cells the table cells (rows × (features + 1)) of the whole batch
 */
public record StepRecord(long step, double loss, double gradNorm, double lr, double seconds,
    long cells) implements Serializable {
  static final String CSV_HEADER = "step,loss,grad_norm,lr,seconds,cells";

  String toCsv() {
    return step + "," + loss + "," + gradNorm + "," + lr + "," + seconds + "," + cells;
  }

  static StepRecord fromCsv(String file, String line) {
    String[] p = line.split(",");
    if (p.length != 6) {
      throw new IllegalArgumentException(file + ": expected '" + CSV_HEADER + "' rows, got '"
          + line + "'");
    }
    try {
      return new StepRecord(Long.parseLong(p[0]), Double.parseDouble(p[1]),
          Double.parseDouble(p[2]), Double.parseDouble(p[3]), Double.parseDouble(p[4]),
          Long.parseLong(p[5]));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(file + ": expected numbers in '" + line + "'");
    }
  }
}
