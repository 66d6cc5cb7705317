package dev.mosaic.spark.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.test.TestSeed;
import java.io.BufferedReader;
import java.io.StringReader;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The bundled tables load as their README describes, and split stratified and reproducibly. */
class BundledDatasetsTest {
  private static int[] classCounts(int[] y, int from, int to, int classes) {
    int[] n = new int[classes];
    for (int i = from; i < to; i++) {
      n[y[i]]++;
    }
    return n;
  }

  @Test
  void everyTableHasItsDocumentedShapeAndClasses() {
    check("iris", 150, 4, new int[] {50, 50, 50});
    check("wine", 178, 13, new int[] {59, 71, 48});
    check("breast_cancer", 569, 30, new int[] {212, 357});
  }

  private static void check(String name, int rows, int features, int[] perClass) {
    LabeledTable t = BundledDatasets.load(name);
    assertEquals(rows, t.rows(), name);
    assertEquals(features, t.features(), name);
    assertEquals(perClass.length, t.classes(), name);
    assertArrayEquals(perClass, classCounts(t.y(), 0, rows, t.classes()), name);
    for (float v : t.x()) {
      assertTrue(Float.isFinite(v), name);
    }
  }

  @Test
  void theSplitIsStratifiedDisjointAndReproducible() {
    long seed = TestSeed.get();
    for (String name : BundledDatasets.NAMES) {
      LabeledTable t = BundledDatasets.load(name);
      TrainTestSplit s = TrainTestSplit.stratified(t, 0.25, seed);
      assertEquals(t.rows(), s.rows());
      int[] all = classCounts(t.y(), 0, t.rows(), t.classes());
      int[] test = classCounts(s.y(), s.nTrain(), s.rows(), t.classes());
      for (int c = 0; c < t.classes(); c++) {
        assertEquals(Math.round(all[c] * 0.25), test[c], name + " class " + c);
      }
      // The same rows, each once: compare the multisets of (features, label) rows.
      assertEquals(rowSet(t.x(), t.y(), t.features()), rowSet(s.x(), s.y(), s.features()), name);
      TrainTestSplit again = TrainTestSplit.stratified(t, 0.25, seed);
      assertArrayEquals(s.x(), again.x());
      assertArrayEquals(s.y(), again.y());
      TrainTestSplit other = TrainTestSplit.stratified(t, 0.25, seed + 1);
      assertTrue(!Arrays.equals(s.y(), other.y()) || !Arrays.equals(s.x(), other.x()));
    }
  }

  private static Set<String> rowSet(float[] x, int[] y, int f) {
    Set<String> s = new HashSet<>();
    for (int r = 0; r < y.length; r++) {
      s.add(Arrays.toString(Arrays.copyOfRange(x, r * f, (r + 1) * f)) + "/" + y[r] + "#"
          + occurrence(s, Arrays.toString(Arrays.copyOfRange(x, r * f, (r + 1) * f)) + "/" + y[r]));
    }
    return s;
  }

  private static int occurrence(Set<String> s, String key) {
    int k = 0;
    while (s.contains(key + "#" + k)) {
      k++;
    }
    return k;
  }

  @Test
  void badInputIsAOneLineError() throws Exception {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> BundledDatasets.load("titanic"));
    assertEquals("no bundled dataset 'titanic': expected one of [iris, wine, breast_cancer]",
        e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> BundledDatasets.parse("t",
        new BufferedReader(new StringReader("a,b,class\n1,2,0\n1,2\n"))));
    assertEquals("dataset t line 3: expected 3 values, got 2", e.getMessage());
    LabeledTable one = BundledDatasets.parse("t",
        new BufferedReader(new StringReader("a,class\n1,0\n2,1\n3,1\n")));
    e = assertThrows(IllegalArgumentException.class,
        () -> TrainTestSplit.stratified(one, 0.25, 1));
    assertEquals("dataset t: class 0 has 1 rows: a stratified split needs at least 2 per class",
        e.getMessage());
  }
}
