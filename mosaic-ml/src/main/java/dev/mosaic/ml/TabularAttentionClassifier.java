package dev.mosaic.ml;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.model.ShippedModel;
import dev.mosaic.spark.model.TrainRowCache;
import dev.mosaic.spark.runner.MosaicContext;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import org.apache.spark.ml.Estimator;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.DefaultParamsWriter;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructType;

/**
 * A nanoTabPFN classifier as a Spark ML {@code Estimator}: {@link #fit} takes the train rows
 * (features, label) and computes, once, what scoring needs from them — the encoders' statistics
 * (two driver-side Spark aggregations) and every block's row-attention keys/values of the train
 * rows (one barrier stage, the row attention a ring over {@code shards} tasks). The returned
 * {@link TabularAttentionClassificationModel} scores any rows against that cache: broadcast when
 * it fits {@code spark.mosaic.cache.broadcastBytes}, else kept in one shard file per task
 * ({@link CacheShards}) that the test rows' queries visit.
 *
 * <p>Weights, read on the driver: by default the shipped pretrained model
 * ({@link ShippedModel}, inside mosaic-spark's jar); a nanoTabPFN checkpoint at {@code modelPath}
 * (safetensors); or, with {@code seededWeights = true}, untrained seeded weights sized by
 * {@code embedDim}, {@code numHeads}, {@code layers}, {@code mlpHidden}, {@code outputs} and
 * {@code seed} (which apply only then: setting them without it is an error rather than a silent
 * no-op). The heads of the shipped model and of a checkpoint come from the file unless
 * {@code numHeads} is set. Params are Java accessor methods, as Spark ML discovers them by
 * reflection.
 */
public final class TabularAttentionClassifier extends Estimator<TabularAttentionClassificationModel>
    implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;
  private final String uid;

  private final Param<String> featuresCol;
  private final StringArrayParam featureCols;
  private final Param<String> labelCol;
  private final Param<String> predictionCol;
  private final Param<String> probabilityCol;
  private final Param<String> modelPath;
  private final BooleanParam seededWeights;
  private final IntParam numHeads;
  private final IntParam shards;
  private final IntParam embedDim;
  private final IntParam layers;
  private final IntParam mlpHidden;
  private final IntParam outputs;
  private final LongParam seed;

  public TabularAttentionClassifier() {
    this(Identifiable$.MODULE$.randomUID("mosaicTabular"));
  }

  public TabularAttentionClassifier(String uid) {
    this.uid = uid; // before the params: each Param records its parent's uid
    featuresCol = new Param<>(this, "featuresCol", "features column: " + FeatureColumn.EXPECTED);
    featureCols = new StringArrayParam(this, "featureCols", FeatureColumn.SCALARS_EXPECTED);
    labelCol = new Param<>(this, "labelCol", "label column: class ids 0, 1, ... of the train rows");
    predictionCol =
        new Param<>(this, "predictionCol", "output column of predicted class indices");
    probabilityCol =
        new Param<>(this, "probabilityCol", "output column of class probabilities, array<float>");
    modelPath = new Param<>(this, "modelPath",
        "nanoTabPFN checkpoint (safetensors); empty: the shipped pretrained model");
    seededWeights = new BooleanParam(this, "seededWeights", "untrained seeded weights sized by"
        + " embedDim, numHeads, layers, mlpHidden, outputs and seed instead of the shipped model");
    numHeads = new IntParam(this, "numHeads", "attention heads (a checkpoint's metadata gives"
        + " them unless this is set)", ParamValidators.gtEq(1));
    shards = new IntParam(this, "shards",
        "Spark barrier tasks the train rows are sharded over in fit (>= 1)",
        ParamValidators.gtEq(1));
    embedDim = new IntParam(this, "embedDim", "seeded weights: embedding width",
        ParamValidators.gtEq(1));
    layers = new IntParam(this, "layers", "seeded weights: blocks", ParamValidators.gtEq(1));
    mlpHidden = new IntParam(this, "mlpHidden", "seeded weights: MLP width",
        ParamValidators.gtEq(1));
    outputs = new IntParam(this, "outputs", "seeded weights: logits per row (most classes)",
        ParamValidators.gtEq(2));
    seed = new LongParam(this, "seed", "seeded weights: the seed");
    setDefault(featuresCol, "features");
    setDefault(featureCols, new String[0]);
    setDefault(labelCol, "label");
    setDefault(predictionCol, "prediction");
    setDefault(probabilityCol, "probability");
    setDefault(modelPath, "");
    setDefault(seededWeights, false);
    setDefault(numHeads, 2);
    setDefault(shards, 2);
    setDefault(embedDim, 32);
    setDefault(layers, 2);
    setDefault(mlpHidden, 64);
    setDefault(outputs, 10);
    setDefault(seed, 1234L);
  }

  @Override
  public String uid() {
    return uid;
  }

  public Param<String> featuresCol() {
    return featuresCol;
  }

  public StringArrayParam featureCols() {
    return featureCols;
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

  public Param<String> modelPath() {
    return modelPath;
  }

  public BooleanParam seededWeights() {
    return seededWeights;
  }

  public IntParam numHeads() {
    return numHeads;
  }

  public IntParam shards() {
    return shards;
  }

  public IntParam embedDim() {
    return embedDim;
  }

  public IntParam layers() {
    return layers;
  }

  public IntParam mlpHidden() {
    return mlpHidden;
  }

  public IntParam outputs() {
    return outputs;
  }

  public LongParam seed() {
    return seed;
  }

  public TabularAttentionClassifier setFeaturesCol(String c) {
    set(featuresCol, c);
    return this;
  }

  /** Numeric scalar columns, one feature each, in this order (instead of featuresCol). */
  public TabularAttentionClassifier setFeatureCols(String... cols) {
    set(featureCols, cols);
    return this;
  }

  public TabularAttentionClassifier setLabelCol(String c) {
    set(labelCol, c);
    return this;
  }

  public TabularAttentionClassifier setPredictionCol(String c) {
    set(predictionCol, c);
    return this;
  }

  public TabularAttentionClassifier setProbabilityCol(String c) {
    set(probabilityCol, c);
    return this;
  }

  public TabularAttentionClassifier setModelPath(String p) {
    set(modelPath, p);
    return this;
  }

  /** True: untrained seeded weights (embedDim, numHeads, layers, mlpHidden, outputs, seed). */
  public TabularAttentionClassifier setSeededWeights(boolean b) {
    set(seededWeights, b);
    return this;
  }

  public TabularAttentionClassifier setNumHeads(int n) {
    set(numHeads, n);
    return this;
  }

  public TabularAttentionClassifier setShards(int n) {
    set(shards, n);
    return this;
  }

  public TabularAttentionClassifier setEmbedDim(int n) {
    set(embedDim, n);
    return this;
  }

  public TabularAttentionClassifier setLayers(int n) {
    set(layers, n);
    return this;
  }

  public TabularAttentionClassifier setMlpHidden(int n) {
    set(mlpHidden, n);
    return this;
  }

  public TabularAttentionClassifier setOutputs(int n) {
    set(outputs, n);
    return this;
  }

  public TabularAttentionClassifier setSeed(long s) {
    set(seed, s);
    return this;
  }

  /** The schema {@link #fit}'s model gives; the label column is read only by fit. */
  @Override
  public StructType transformSchema(StructType schema) {
    FeatureColumn.of(schema, this, featuresCol, featureCols);
    return TabularAttentionClassificationModel.outputSchema(schema, $(predictionCol),
        $(probabilityCol));
  }

  @Override
  public TabularAttentionClassificationModel fit(Dataset<?> dataset) {
    FeatureColumn features = FeatureColumn.of(dataset.schema(), this, featuresCol, featureCols);
    if (!(FeatureColumn.field(dataset.schema(), $(labelCol)).dataType()
        instanceof NumericType)) {
      throw new IllegalArgumentException("column '" + $(labelCol) + "' must be a numeric type,"
          + " got " + FeatureColumn.field(dataset.schema(), $(labelCol)).dataType().simpleString());
    }
    LinkedHashMap<String, Tensor> stateDict = new LinkedHashMap<>();
    NanoTabPfnShape shape = weights(stateDict);
    TrainingTable table = TrainingTable.read(dataset, features, $(labelCol));
    try {
      if (table.classes > shape.outputs()) {
        throw new IllegalArgumentException("column '" + $(labelCol) + "' has class id "
            + (table.classes - 1) + ": expected at most " + (shape.outputs() - 1)
            + " (the model has " + shape.outputs() + " outputs)");
      }
      long cacheBytes = CacheShards.bytes(shape.layers(), table.features, table.count,
          shape.embedDim());
      long limit = TabularAttentionClassificationModel.broadcastBytes(dataset.sparkSession());
      int sp = (int) Math.min(intOf(shards), table.count);
      MosaicContext ctx = MosaicContext.init(dataset.sparkSession(), sp);
      TabularAttentionClassificationModel model;
      if (cacheBytes <= limit) {
        TrainRowCache cache = TrainRowCacheFit.run(ctx, table, stateDict, shape.numHeads());
        model = new TabularAttentionClassificationModel(uid, stateDict, shape.numHeads(), cache);
      } else { // too large to broadcast: the shards stay on the file system, one per task
        String dir = CacheShards.newDir(dataset.sparkSession(), uid, cacheBytes, limit);
        CacheShards cache = TrainRowCacheFit.runSharded(ctx, table, stateDict,
            shape.numHeads(), shape.layers(), shape.embedDim(), dir);
        model = new TabularAttentionClassificationModel(uid, stateDict, shape.numHeads(), cache);
      }
      return copyValues(model, new ParamMap()).setParent(this);
    } finally {
      table.release();
    }
  }

  /** Fills {@code out} with the seeded, checkpoint's or shipped weights and returns their shape. */
  private NanoTabPfnShape weights(LinkedHashMap<String, Tensor> out) {
    String path = $(modelPath);
    boolean noPath = path == null || path.isBlank();
    boolean seeded = (Boolean) $(seededWeights);
    if (seeded) {
      if (!noPath) {
        throw new IllegalArgumentException("seededWeights is true and modelPath is '" + path
            + "': expected one source of weights, unset one of them");
      }
      NanoTabPfnShape shape = new NanoTabPfnShape(intOf(embedDim), intOf(numHeads),
          intOf(layers), intOf(mlpHidden), intOf(outputs));
      out.putAll(NanoTabPfnInit.seeded(shape, (Long) $(seed)));
      NanoTabPfnCheckpoint.check("seeded weights", out, shape.numHeads());
      return shape;
    }
    for (Param<?> p : new Param<?>[] {embedDim, layers, mlpHidden, outputs, seed}) {
      if (isSet(p)) {
        throw new IllegalArgumentException(p.name() + " sizes seeded weights, but seededWeights"
            + " is false (the " + (noPath ? "shipped model" : "checkpoint " + path) + " is used):"
            + " set seededWeights to true, or unset " + p.name());
      }
    }
    Integer heads = isSet(numHeads) ? intOf(numHeads) : null;
    if (noPath) {
      ShippedModel.Loaded shipped = ShippedModel.load();
      out.putAll(shipped.stateDict());
      return heads == null ? shipped.shape()
          : NanoTabPfnCheckpoint.check(shipped.source(), out, heads);
    }
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(Path.of(path), heads, 1)) {
      out.putAll(m.stateDict());
      return m.shape();
    }
  }

  /** Spark's IntParam is a Param&lt;Object&gt; to Java: unbox here. */
  private int intOf(IntParam p) {
    return (Integer) $(p);
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
