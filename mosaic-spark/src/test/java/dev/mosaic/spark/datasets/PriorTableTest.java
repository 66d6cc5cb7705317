package dev.mosaic.spark.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.runner.TestSpark;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The demo's prior table: exactly the asked sizes, the same on every draw, and as a DataFrame. */
class PriorTableTest {
  @Test
  void exactSizesDeterministicAndEveryClassInTrain() {
    PriorDataset a = PriorTable.draw(500, 7, 4, 0.8);
    PriorDataset b = PriorTable.draw(500, 7, 4, 0.8);
    assertEquals(500, a.rows());
    assertEquals(7, a.features());
    assertEquals(4, a.classes());
    assertEquals(400, a.nTrain());
    assertArrayEquals(a.x(), b.x(), "same sizes, same table");
    assertArrayEquals(a.y(), b.y());
    boolean[] inTrain = new boolean[4];
    for (float y : a.yTrain()) {
      inTrain[(int) y] = true;
    }
    assertArrayEquals(new boolean[] {true, true, true, true}, inTrain);
    assertFalse(Arrays.equals(a.x(), PriorTable.draw(500, 7, 3, 0.8).x()),
        "other sizes draw another table");
  }

  @Test
  void impossibleSizesAreOneLineErrors() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PriorTable.draw(10, 3, 6, 0.8));
    assertEquals("prior table sizes: expected rows >= 4, features >= 1, 2 <= classes <= rows/2"
        + " and a train fraction in (0, 1), got rows 10, features 3, classes 6, train fraction"
        + " 0.8", e.getMessage());
  }

  @Test
  @Timeout(600)
  void theDataFrameHoldsTheTableRowByRow() {
    PriorDataset t = PriorTable.draw(300, 5, 3, 0.7);
    List<Row> rows = PriorTable.toDataFrame(TestSpark.get(), t, 3).collectAsList();
    assertEquals(300, rows.size());
    for (Row r : rows) {
      int id = (int) r.getLong(0);
      List<Float> f = r.getList(1);
      for (int j = 0; j < 5; j++) {
        assertEquals(t.x()[id * 5 + j], f.get(j), 0f, "row " + id + " feature " + j);
      }
      assertEquals((int) t.y()[id], r.getInt(2), "label of row " + id);
    }
    assertTrue(rows.stream().mapToLong(r -> r.getLong(0)).distinct().count() == 300);
  }
}
