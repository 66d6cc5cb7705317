package dev.mosaic.spark.datasets;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@link DatasetComparison}'s results as a Markdown table, ready to paste into the README: one row
 * per dataset (rows, features, classes, then "accuracy / ROC AUC" of each model), and a mean row
 * over the datasets each model ran on.
 */
public final class ComparisonTable {
  private ComparisonTable() {}

  /** The table, lines separated by {@code \n}, ending with one. */
  public static String markdown(List<DatasetComparison.Result> results) {
    List<String> models = new ArrayList<>();
    Map<String, Map<String, DatasetComparison.Result>> byDataset = new LinkedHashMap<>();
    for (DatasetComparison.Result r : results) {
      if (!models.contains(r.model())) {
        models.add(r.model());
      }
      byDataset.computeIfAbsent(r.dataset(), k -> new LinkedHashMap<>()).put(r.model(), r);
    }
    StringBuilder sb = new StringBuilder("| dataset | rows | features | classes |");
    StringBuilder rule = new StringBuilder("|---|---:|---:|---:|");
    for (String m : models) {
      sb.append(' ').append(header(m)).append(" acc / AUC |");
      rule.append("---:|");
    }
    sb.append('\n').append(rule).append('\n');
    double[][] sums = new double[models.size()][3]; // accuracy, AUC, datasets
    for (Map.Entry<String, Map<String, DatasetComparison.Result>> e : byDataset.entrySet()) {
      DatasetComparison.Result any = e.getValue().values().iterator().next();
      sb.append(String.format(Locale.ROOT, "| %s | %d | %d | %d |", e.getKey(),
          any.trainRows() + any.testRows(), any.features(), any.classes()));
      for (int i = 0; i < models.size(); i++) {
        DatasetComparison.Result r = e.getValue().get(models.get(i));
        if (r == null || r.note() != null) {
          sb.append(r == null ? " - |" : " n/a (" + r.note() + ") |");
          continue;
        }
        sb.append(cell(r.accuracy(), r.auc()));
        sums[i][0] += r.accuracy();
        sums[i][1] += r.auc();
        sums[i][2]++;
      }
      sb.append('\n');
    }
    sb.append("| **mean** | | | |");
    for (int i = 0; i < models.size(); i++) {
      int n = (int) sums[i][2];
      if (n == 0) {
        sb.append(" - |");
        continue;
      }
      sb.append(cell(sums[i][0] / n, sums[i][1] / n));
      if (n < byDataset.size()) { // a mean over fewer datasets says over how many
        sb.setLength(sb.length() - 2);
        sb.append(" (").append(n).append(" of ").append(byDataset.size()).append(") |");
      }
    }
    return sb.append('\n').toString();
  }

  /** The model's column header: Mosaic's model says so, the MLlib ones already do. */
  private static String header(String model) {
    return model.equals(DatasetComparison.MODEL) ? "Mosaic (" + model + ")" : model;
  }

  private static String cell(double accuracy, double auc) {
    return String.format(Locale.ROOT, " %.3f / %.3f |", accuracy, auc);
  }
}
