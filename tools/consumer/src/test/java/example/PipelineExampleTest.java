package example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The consumer's view: one Spark version on its class path, and the Pipeline runs. */
@Timeout(1800) // generous: a loaded 2-core machine takes minutes to start Spark
class PipelineExampleTest {
  private static final Pattern SPARK_JAR = Pattern.compile("spark-[a-z-]+_2\\.13-([0-9][^/]*)\\.jar$");

  @TempDir Path dir;

  @Test
  void oneSparkVersionOnTheClassPath() {
    Set<String> versions = new TreeSet<>();
    for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Matcher m = SPARK_JAR.matcher(entry);
      if (m.find()) {
        versions.add(m.group(1));
      }
    }
    assertEquals(Set.of(org.apache.spark.package$.MODULE$.SPARK_VERSION()), versions,
        "Spark jar versions on the consumer's class path");
  }

  @Test
  void pipelineFitsSavesLoadsAndTransforms() throws Exception {
    SparkSession spark = SparkSession.builder().master("local[2]").appName("mosaic-consumer")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.warehouse.dir", dir.resolve("warehouse").toString())
        .getOrCreate();
    try {
      Dataset<Row> out = PipelineExample.run(spark, dir.resolve("pipeline").toString());
      List<Row> rows = out.select("row_id", "prediction", "probability").collectAsList();
      assertEquals(20, rows.size()); // the test rows
      for (Row r : rows) {
        int p = ((Number) r.get(1)).intValue();
        assertTrue(p == 0 || p == 1, "prediction " + p);
        List<Object> probs = r.getList(2);
        double sum = 0;
        for (Object o : probs) {
          sum += ((Number) o).doubleValue();
        }
        assertEquals(1.0, sum, 1e-5, "probabilities of row " + r.get(0));
      }
    } finally {
      spark.stop();
    }
  }
}
