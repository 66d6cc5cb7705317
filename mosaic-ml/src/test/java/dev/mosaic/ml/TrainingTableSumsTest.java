package dev.mosaic.ml;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.mosaic.ml.TrainingTable.Parsed;
import dev.mosaic.ml.TrainingTable.Sums;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.Test;

/** The driver-side summary names the same rows however the train rows are partitioned. */
class TrainingTableSumsTest {
  private static final FeatureColumnFixture F = new FeatureColumnFixture();

  @Test
  void featureCountMismatchNamesTheSameRowsForAnyPartitioning() {
    List<Parsed> rows = List.of(row(0, 1.0, 2.0), row(1, 3.0, 4.0), row(2, 5.0, 6.0),
        row(3, 7.0, 8.0, 9.0), row(4, 1.0));
    String expected = "row 3 of the training DataFrame (0-based) has 3 features, row 0 has 2:"
        + " expected the same count";
    for (int cut = 0; cut <= rows.size(); cut++) {
      Sums a = new Sums();
      rows.subList(0, cut).forEach(a::add);
      Sums b = new Sums();
      rows.subList(cut, rows.size()).forEach(b::add);
      assertEquals(expected, new Sums().merge(b).merge(a).firstProblem(), "cut at " + cut);
      assertEquals(expected, new Sums().merge(a).merge(b).firstProblem(), "cut at " + cut);
    }
  }

  @Test
  void sumsOfGoodRowsAddUp() {
    Sums a = new Sums();
    a.add(row(0, 1.0, 2.0));
    Sums b = new Sums();
    b.add(row(1, 3.0, 6.0));
    Sums s = a.merge(b);
    assertNull(s.firstProblem());
    assertEquals(2, s.count);
    assertEquals("[4.0, 8.0]", Arrays.toString(s.sum));
  }

  private static Parsed row(long index, Double... x) {
    // a DataFrame's Row holds arrays as Scala sequences
    Object seq = scala.jdk.javaapi.CollectionConverters.asScala(Arrays.asList(x)).toSeq();
    return Parsed.of(RowFactory.create(seq, 1.0), index, F.column, "label", 1);
  }

  /** An array<double> features column named 'features'. */
  private static final class FeatureColumnFixture {
    final FeatureColumn column = FeatureColumn.of(new org.apache.spark.sql.types.StructType()
        .add("features", org.apache.spark.sql.types.DataTypes.createArrayType(
            org.apache.spark.sql.types.DataTypes.DoubleType, true)), "features");
  }
}
