package dev.mosaic.spark.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The README-ready Markdown table of the demo's part (a). */
class ComparisonTableTest {
  private static DatasetComparison.Result r(String dataset, int train, int test, int f, int c,
      String model, double acc, double auc, String note) {
    return new DatasetComparison.Result(dataset, train, test, f, c, model, acc, auc, 1.0, note);
  }

  @Test
  void oneRowPerDatasetAndAMeanRow() {
    String lr = MllibBaselines.Kind.LOGISTIC_REGRESSION.label();
    List<DatasetComparison.Result> results = List.of(
        r("iris", 112, 38, 4, 3, DatasetComparison.MODEL, 0.9, 0.95, null),
        r("iris", 112, 38, 4, 3, lr, 1.0, 1.0, null),
        r("wine", 133, 45, 13, 3, DatasetComparison.MODEL, 0.8, 0.85, null),
        r("wine", 133, 45, 13, 3, lr, 0.9, 0.96, null));
    assertEquals(String.join("\n",
        "| dataset | rows | features | classes | Mosaic (nanoTabPFN) acc / AUC |"
            + " MLlib LogisticRegression acc / AUC |",
        "|---|---:|---:|---:|---:|---:|",
        "| iris | 150 | 4 | 3 | 0.900 / 0.950 | 1.000 / 1.000 |",
        "| wine | 178 | 13 | 3 | 0.800 / 0.850 | 0.900 / 0.960 |",
        "| **mean** | | | | 0.850 / 0.900 | 0.950 / 0.980 |", ""),
        ComparisonTable.markdown(results));
  }

  @Test
  void aSkippedModelIsNotAveragedAndTheMeanSaysOverHowMany() {
    List<DatasetComparison.Result> results = List.of(
        r("iris", 112, 38, 4, 3, DatasetComparison.MODEL, Double.NaN, Double.NaN,
            "3 classes, the model has 2 outputs"),
        r("breast_cancer", 426, 143, 30, 2, DatasetComparison.MODEL, 0.75, 0.5, null));
    assertEquals(String.join("\n",
        "| dataset | rows | features | classes | Mosaic (nanoTabPFN) acc / AUC |",
        "|---|---:|---:|---:|---:|",
        "| iris | 150 | 4 | 3 | n/a (3 classes, the model has 2 outputs) |",
        "| breast_cancer | 569 | 30 | 2 | 0.750 / 0.500 |",
        "| **mean** | | | | 0.750 / 0.500 (1 of 2) |", ""),
        ComparisonTable.markdown(results));
  }
}
