package dev.mosaic.ml;

import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.TabularConfig;
import dev.mosaic.spark.runner.MosaicContext;
import java.util.Arrays;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.DefaultParamsWriter;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The nanoTabPFN-style tabular model as a pipeline stage: every row of the input (row id,
 * {@code array<float>} features, label) gets a predicted class and class probabilities. Rows with
 * id {@code < numTrainRows} are the training rows (their labels are read; other labels may be
 * null); all rows attend to them with ring attention over {@code shards} Spark barrier tasks.
 * Row ids must be 0..n−1. The weights come from {@code seed} (untrained): see the README.
 *
 * <p>Params are Java accessor methods, as Spark ML discovers them by reflection.
 */
public final class TabularAttentionClassifier extends Transformer
    implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;
  private final String uid;

  private final Param<String> rowIdCol;
  private final Param<String> featuresCol;
  private final Param<String> labelCol;
  private final Param<String> predictionCol;
  private final Param<String> probabilityCol;
  private final LongParam numTrainRows;
  private final IntParam numClasses;
  private final IntParam shards;
  private final IntParam embedDim;
  private final IntParam heads;
  private final IntParam layers;
  private final LongParam seed;

  public TabularAttentionClassifier() {
    this(Identifiable$.MODULE$.randomUID("mosaicTabular"));
  }

  public TabularAttentionClassifier(String uid) {
    this.uid = uid; // before the params: each Param records its parent's uid
    rowIdCol = new Param<>(this, "rowIdCol", "row id column, 0..n-1");
    featuresCol =
        new Param<>(this, "featuresCol", "features column, array<float> or array<double>");
    labelCol =
        new Param<>(this, "labelCol", "label column (class index), read for training rows");
    predictionCol =
        new Param<>(this, "predictionCol", "output column of predicted class indices");
    probabilityCol =
        new Param<>(this, "probabilityCol", "output column of class probabilities, array<float>");
    numTrainRows = new LongParam(this, "numTrainRows",
        "rows with id < numTrainRows are training rows (> 0)", ParamValidators.gt(0));
    numClasses =
        new IntParam(this, "numClasses", "number of classes (>= 2)", ParamValidators.gtEq(2));
    shards = new IntParam(this, "shards",
        "Spark barrier tasks the rows are sharded over (>= 1)", ParamValidators.gtEq(1));
    embedDim =
        new IntParam(this, "embedDim", "embedding width (>= 1)", ParamValidators.gtEq(1));
    heads = new IntParam(this, "heads", "attention heads, must divide embedDim",
        ParamValidators.gtEq(1));
    layers = new IntParam(this, "layers", "attention blocks (>= 1)", ParamValidators.gtEq(1));
    seed = new LongParam(this, "seed", "seed of the model weights");
    setDefault(rowIdCol, "row_id");
    setDefault(featuresCol, "features");
    setDefault(labelCol, "label");
    setDefault(predictionCol, "prediction");
    setDefault(probabilityCol, "probability");
    setDefault(numClasses, 2);
    setDefault(shards, 2);
    setDefault(embedDim, 32);
    setDefault(heads, 2);
    setDefault(layers, 2);
    setDefault(seed, 1234L);
  }

  @Override
  public String uid() {
    return uid;
  }

  public Param<String> rowIdCol() {
    return rowIdCol;
  }

  public Param<String> featuresCol() {
    return featuresCol;
  }

  public Param<String> labelCol() {
    return labelCol;
  }

  public Param<String> predictionCol() {
    return predictionCol;
  }

  public Param<String> probabilityCol() {
    return probabilityCol;
  }

  public LongParam numTrainRows() {
    return numTrainRows;
  }

  public IntParam numClasses() {
    return numClasses;
  }

  public IntParam shards() {
    return shards;
  }

  public IntParam embedDim() {
    return embedDim;
  }

  public IntParam heads() {
    return heads;
  }

  public IntParam layers() {
    return layers;
  }

  public LongParam seed() {
    return seed;
  }

  public TabularAttentionClassifier setNumTrainRows(long n) {
    set(numTrainRows, n);
    return this;
  }

  public TabularAttentionClassifier setNumClasses(int n) {
    set(numClasses, n);
    return this;
  }

  public TabularAttentionClassifier setShards(int n) {
    set(shards, n);
    return this;
  }

  public TabularAttentionClassifier setFeaturesCol(String c) {
    set(featuresCol, c);
    return this;
  }

  public TabularAttentionClassifier setLabelCol(String c) {
    set(labelCol, c);
    return this;
  }

  public TabularAttentionClassifier setRowIdCol(String c) {
    set(rowIdCol, c);
    return this;
  }

  public TabularAttentionClassifier setSeed(long s) {
    set(seed, s);
    return this;
  }

  @Override
  public StructType transformSchema(StructType schema) {
    if (!isDefined(numTrainRows)) {
      throw new IllegalArgumentException("TabularAttentionClassifier needs numTrainRows");
    }
    requireColumn(schema, $(rowIdCol), "an integral type", t -> t == DataTypes.LongType
        || t == DataTypes.IntegerType);
    requireColumn(schema, $(featuresCol), "array<float> or array<double>",
        t -> t instanceof ArrayType a && (a.elementType() == DataTypes.FloatType
            || a.elementType() == DataTypes.DoubleType));
    requireColumn(schema, $(labelCol), "a numeric type", t -> t instanceof NumericType);
    for (String out : new String[] {$(predictionCol), $(probabilityCol)}) {
      if (Arrays.asList(schema.fieldNames()).contains(out)) {
        throw new IllegalArgumentException("output column '" + out + "' already exists");
      }
    }
    return schema.add($(predictionCol), DataTypes.IntegerType, false)
        .add($(probabilityCol), DataTypes.createArrayType(DataTypes.FloatType, false), false);
  }

  private static void requireColumn(StructType schema, String name, String expected,
      java.util.function.Predicate<DataType> ok) {
    StructField f = Arrays.stream(schema.fields()).filter(x -> x.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("column '" + name + "' is missing; the"
            + " input has " + Arrays.toString(schema.fieldNames())));
    if (!ok.test(f.dataType())) {
      throw new IllegalArgumentException("column '" + name + "' must be " + expected + ", got "
          + f.dataType().simpleString());
    }
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    Dataset<Row> in = dataset.toDF();
    Column id = in.col($(rowIdCol)).cast(DataTypes.LongType).alias("row_id");
    Column feats = in.col($(featuresCol))
        .cast(DataTypes.createArrayType(DataTypes.FloatType, false)).alias("features");
    Column label = org.apache.spark.sql.functions.coalesce(
        in.col($(labelCol)).cast(DataTypes.IntegerType),
        org.apache.spark.sql.functions.lit(0)).alias("label");
    Dataset<Row> table = in.select(id, feats, label);
    long rows = table.count();
    Row first = table.select(org.apache.spark.sql.functions.size(table.col("features")))
        .head();
    int features = first.getInt(0);
    if (longOf(numTrainRows) > rows) {
      throw new IllegalArgumentException(
          "numTrainRows " + longOf(numTrainRows) + " exceeds the " + rows + " input rows");
    }
    TabularConfig cfg = new TabularConfig(features, intOf(numClasses), intOf(embedDim), intOf(heads),
        intOf(layers), 2 * intOf(embedDim), longOf(seed));
    MosaicContext ctx = MosaicContext.init(in.sparkSession(), intOf(shards));
    Dataset<Row> pred = TabularJob.predict(ctx, table, rows, longOf(numTrainRows), cfg, null)
        .select(org.apache.spark.sql.functions.col("row_id").alias("__mosaic_row_id"),
            org.apache.spark.sql.functions.col("prediction").alias($(predictionCol)),
            org.apache.spark.sql.functions.col("probabilities").alias($(probabilityCol)));
    return in.join(pred, in.col($(rowIdCol)).cast(DataTypes.LongType)
        .equalTo(pred.col("__mosaic_row_id"))).drop("__mosaic_row_id");
  }

  /** Spark's IntParam is a Param&lt;Object&gt; to Java: unbox here. */
  private int intOf(IntParam p) {
    return (Integer) $(p);
  }

  private long longOf(LongParam p) {
    return (Long) $(p);
  }

  @Override
  public TabularAttentionClassifier copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  @Override
  public MLWriter write() {
    return new DefaultParamsWriter(this);
  }

  public static MLReader<TabularAttentionClassifier> read() {
    return new DefaultParamsReader<>();
  }

  public static TabularAttentionClassifier load(String path) {
    return read().load(path);
  }
}
