package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.jobs.NanoTabPfnJob;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import java.util.BitSet;
import java.util.List;
import org.apache.spark.sql.Row;

/**
 * What {@link TabularJob} must produce for a synthetic table: the unsharded nanoTabPFN model's
 * class probabilities for every row (its seeded weights), computed once in this JVM. The fault
 * tests compare the rows a job wrote after a fault with these.
 */
record TabularExpectation(int rows, int classes, float[] logits, int outputs) {
  /** The demo's bound (DemoCommand): fp32 ring merges against one fp32 pass, on probabilities. */
  static final double MAX_PROBABILITY_ERROR = 1e-4;

  static TabularExpectation of(int rows, int features, int classes, long nTrain, long seed,
      TabularConfig cfg) {
    SyntheticTable table = SyntheticTable.generate(rows, features, classes, seed);
    float[] yTrain = new float[(int) nTrain];
    for (int r = 0; r < nTrain; r++) {
      yTrain[r] = table.labels()[r];
    }
    Tensor logits = NanoTabPfnJob.localRowLogits(TabularJob.weights(cfg), cfg.heads(),
        Tensor.of(table.values(), rows, features), yTrain, 1);
    return new TabularExpectation(rows,
        dev.mosaic.spark.model.NanoTabPfnModel.classes(yTrain), logits.data(), logits.dim(1));
  }

  /** Exactly one row per row id, each with the unsharded model's probabilities. */
  void check(List<Row> written) {
    assertEquals(rows, written.size(), "rows written");
    BitSet seen = new BitSet(rows);
    double worst = 0;
    for (Row r : written) {
      int id = Math.toIntExact(r.getLong(r.fieldIndex("row_id")));
      assertTrue(!seen.get(id), "row " + id + " written twice");
      seen.set(id);
      List<Float> p = r.getList(r.fieldIndex("probabilities"));
      float[] expected = TabularJob.softmax(logits, id * outputs, classes);
      assertEquals(classes, p.size(), "probabilities of row " + id);
      for (int c = 0; c < classes; c++) {
        worst = Math.max(worst, Math.abs(p.get(c) - expected[c]));
      }
    }
    assertTrue(worst < MAX_PROBABILITY_ERROR, "max |Δprobability| " + worst);
  }
}
