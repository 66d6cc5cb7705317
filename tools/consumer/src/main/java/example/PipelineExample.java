package example;

import dev.mosaic.ml.TabularAttentionClassifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** The README's example: Mosaic's classifier in a Spark ML Pipeline, saved, loaded, applied. */
public final class PipelineExample {
  private PipelineExample() {}

  /** Fits, saves to {@code dir}, loads back and returns the loaded model's predictions. */
  public static Dataset<Row> run(SparkSession spark, String dir) throws java.io.IOException {
    StructType schema = new StructType()
        .add("row_id", DataTypes.LongType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false)
        .add("label", DataTypes.IntegerType, true);
    Random rnd = new Random(7);
    List<Row> rows = new ArrayList<>();
    for (long id = 0; id < 100; id++) {
      float a = (float) rnd.nextGaussian();
      float b = (float) rnd.nextGaussian();
      rows.add(RowFactory.create(id, new float[] {a, b, a * b}, a + b > 0 ? 1 : 0));
    }
    Dataset<Row> train = spark.createDataFrame(rows.subList(0, 80), schema);
    Dataset<Row> test = spark.createDataFrame(rows.subList(80, 100), schema);

    // Fit once on the train rows (the shipped pretrained model, from Mosaic's jar; setModelPath
    // for another nanoTabPFN checkpoint), then score any rows against the cached train rows.
    TabularAttentionClassifier clf = new TabularAttentionClassifier().setShards(2);
    PipelineModel model = new Pipeline().setStages(new PipelineStage[] {clf}).fit(train);
    model.write().overwrite().save(dir);
    return PipelineModel.load(dir).transform(test);
  }

  public static void main(String[] args) throws java.io.IOException {
    SparkSession spark = SparkSession.builder().master("local[2]").appName("mosaic-consumer")
        .getOrCreate();
    run(spark, args.length > 0 ? args[0] : "target/pipeline").select("row_id", "prediction",
        "probability").show(5);
    spark.stop();
  }
}
