package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.SyntheticTable;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.model.TabularModel;
import java.util.BitSet;
import java.util.List;
import org.apache.spark.sql.Row;

/**
 * What {@link TabularJob} must produce for a synthetic table: the unsharded model's class
 * probabilities for every row, computed once in this JVM. The fault tests compare the rows a job
 * wrote after a fault with these.
 */
record TabularExpectation(int rows, int classes, float[] logits) {
  /** The demo's bound (DemoCommand): fp32 ring merges against one fp32 pass, on probabilities. */
  static final double MAX_PROBABILITY_ERROR = 1e-4;

  static TabularExpectation of(int rows, int features, int classes, long nTrain, long seed,
      TabularConfig cfg) {
    SyntheticTable table = SyntheticTable.generate(rows, features, classes, seed);
    try (TabularModel model = new TabularModel(cfg, null, 1)) {
      Tensor logits = model.forward(Tensor.of(table.values(), rows, features), table.labels(), 0,
          nTrain);
      return new TabularExpectation(rows, classes, logits.data());
    }
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
      float[] expected = TabularJob.softmax(logits, id * classes, classes);
      for (int c = 0; c < classes; c++) {
        worst = Math.max(worst, Math.abs(p.get(c) - expected[c]));
      }
    }
    assertTrue(worst < MAX_PROBABILITY_ERROR, "max |Δprobability| " + worst);
  }
}
