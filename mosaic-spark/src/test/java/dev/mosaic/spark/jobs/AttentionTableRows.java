package dev.mosaic.spark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.runner.TestSpark;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;

/** An attention-table output read back: its rows (key, position, output) as one tensor per key. */
public final class AttentionTableRows {
  private AttentionTableRows() {}

  /** Checks there is one row per input position; {@code seqs} gives each key's shape. */
  public static Map<String, Tensor> read(String output, String keyCol, String posCol,
      String outCol, Map<String, Tensor> seqs) {
    List<Row> rows = TestSpark.get().read().parquet(output).collectAsList();
    assertEquals(seqs.values().stream().mapToInt(x -> x.dim(0)).sum(), rows.size());
    Map<String, Tensor> actual = new HashMap<>();
    for (Row row : rows) {
      String key = row.getString(row.fieldIndex(keyCol));
      int t = row.getInt(row.fieldIndex(posCol));
      List<Float> y = row.getList(row.fieldIndex(outCol));
      Tensor a = actual.computeIfAbsent(key, k -> Tensor.zeros(seqs.get(k).shape()));
      int width = a.size() / a.dim(0);
      for (int i = 0; i < width; i++) {
        a.data()[t * width + i] = y.get(i);
      }
    }
    return actual;
  }
}
