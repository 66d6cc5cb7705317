// A ragged table of sequences as Parquet, for `mosaic attention-table` and `mosaic plan --lengths`:
// rows (key string, pos int, emb array<float>), lengths log-uniform in [MIN, MAX], seeded.
//   jshell -R-Dout=/tmp/ragged.parquet -R-Dsequences=200 -R-Dembed=16 \
//     --class-path "$(cat mosaic-spark/target/classpath.txt)" tools/ragged-table.jsh
import org.apache.spark.sql.*;
import org.apache.spark.sql.types.*;
import java.util.*;
// One method: jshell reads a chained call across lines only inside a declaration.
void writeTable() {
  String out = System.getProperty("out", "/tmp/ragged.parquet");
  int sequences = Integer.getInteger("sequences", 200);
  int embed = Integer.getInteger("embed", 16);
  int minLen = Integer.getInteger("min", 16);
  int maxLen = Integer.getInteger("max", 2048);
  Random rnd = new Random(Long.getLong("seed", 1L));
  SparkSession spark = SparkSession.builder().master("local[2]").appName("ragged-table")
      .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
      .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
  List<Row> rows = new ArrayList<>();
  for (int s = 0; s < sequences; s++) {
    int n = (int) Math.round(Math.exp(Math.log(minLen) + rnd.nextDouble() * Math.log((double) maxLen / minLen)));
    for (int p = 0; p < n; p++) {
      float[] v = new float[embed];
      for (int i = 0; i < embed; i++) v[i] = (float) rnd.nextGaussian();
      rows.add(RowFactory.create(String.format("seq-%05d", s), p, v));
    }
  }
  spark.createDataFrame(rows, new StructType().add("key", DataTypes.StringType, false)
      .add("pos", DataTypes.IntegerType, false)
      .add("emb", DataTypes.createArrayType(DataTypes.FloatType, false), false))
      .write().mode("overwrite").parquet(out);
  System.out.println("wrote " + rows.size() + " rows, " + sequences + " sequences to " + out);
  spark.stop();
}
writeTable();
/exit
