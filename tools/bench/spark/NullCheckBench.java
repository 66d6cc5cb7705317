import static org.apache.spark.sql.functions.*;
import org.apache.spark.sql.*;
/** exists(e, x -> x IS NULL) vs a Java UDF vs no element check, in one session (see docs/performance.md). */
public class NullCheckBench {
  public static void main(String[] a) {
    SparkSession s = SparkSession.builder().master("local[2]").config("spark.ui.enabled","false").getOrCreate();
    s.sparkContext().setLogLevel("ERROR");
    s.udf().register("hasNull", (org.apache.spark.sql.api.java.UDF1<scala.collection.Seq<Float>, Boolean>) q -> {
      if (q == null) return true;
      scala.collection.Iterator<Float> it = q.iterator();
      while (it.hasNext()) if (it.next() == null) return true;
      return false;
    }, org.apache.spark.sql.types.DataTypes.BooleanType);
    Dataset<Row> df = s.range(0, 500000).select(col("id").as("key"),
        expr("transform(sequence(0, 31), i -> cast(sin(id * 0.37D + i * 1.3D) as float))").as("emb")).cache();
    df.count();
    Column e = col("emb");
    Column[] checks = {
      exists(e, x -> x.isNull()),
      lit(false),
      coalesce(arrays_overlap(e, array(lit(Float.NaN))), lit(true)),
      callUDF("hasNull", e)
    };
    String[] names = {"exists", "none", "overlapNaN", "udf"};
    for (int r = 0; r < 3; r++) for (int i = 0; i < checks.length; i++) {
      long t0 = System.nanoTime();
      Row row = df.agg(sum(when(e.isNull().or(size(e).notEqual(32)).or(checks[i]), 1).otherwise(0))).first();
      System.out.printf("%-14s %.3f s  (%s)%n", names[i], (System.nanoTime()-t0)/1e9, row.get(0));
    }
    Dataset<Row> t = s.sql("select array(1.0f, null, 2.0f) as emb union all select array(3.0f, 4.0f) union all select array(cast(null as float)) union all select cast(array() as array<float>) union all select array(float('NaN'), 1.0f) union all select array(float('NaN'), null)");
    t.select(e, exists(e, x -> x.isNull()), coalesce(arrays_overlap(e, array(lit(Float.NaN))), lit(true)), callUDF("hasNull", e)).show();
    s.stop();
  }
}
