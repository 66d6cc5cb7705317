package dev.mosaic.ml;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.TrainRowCache;
import dev.mosaic.spark.runner.MosaicConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.LinkedHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.Model;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsReader$;
import org.apache.spark.ml.util.DefaultParamsWriter$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWritable;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.network.util.JavaUtils;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * A fitted {@link TabularAttentionClassifier}: the model's weights and the train rows' cache.
 * {@link #transform} scores any rows without recomputing the train rows. A cache within
 * {@code spark.mosaic.cache.broadcastBytes} ({@link TrainRowCache}) is broadcast and scoring runs
 * in ordinary tasks (a batch DataFrame or a Structured Streaming micro-batch, any partitioning,
 * no barrier stage). A larger one stays in p shard files ({@link CacheShards}) and scoring is one
 * barrier stage of p tasks whose test rows' queries visit every shard ({@link ShardedScoring}).
 * Saves and loads with the cache ({@code data/model.safetensors} next to the params, and
 * {@code data/cache.safetensors} or the shards under {@code data/shards/}; loading leaves the
 * shards on the file system).
 */
public final class TabularAttentionClassificationModel
    extends Model<TabularAttentionClassificationModel> implements MLWritable {
  private static final long serialVersionUID = 1L;
  /** Largest cache that scoring broadcasts to the executors. */
  public static final String BROADCAST_BYTES = "spark.mosaic.cache.broadcastBytes";
  /** Its default: 256 MiB, held once per executor JVM. */
  public static final String BROADCAST_BYTES_DEFAULT = "256m";
  private static final String MODEL_FILE = "model.safetensors";
  private static final String CACHE_FILE = "cache.safetensors";
  private static final String SHARDS_DIR = "shards";

  private final String uid;
  private final LinkedHashMap<String, Tensor> stateDict;
  private final int numHeads;
  private final TrainRowCache cache; // null when the cache is kept in shards
  private final CacheShards shards; // null when the cache is broadcast
  private final Param<String> featuresCol;
  private final StringArrayParam featureCols;
  private final Param<String> predictionCol;
  private final Param<String> probabilityCol;
  private transient Broadcast<CachedScoring.Bundle> broadcast;

  TabularAttentionClassificationModel(String uid, LinkedHashMap<String, Tensor> stateDict,
      int numHeads, TrainRowCache cache) {
    this(uid, stateDict, numHeads, cache, null);
  }

  TabularAttentionClassificationModel(String uid, LinkedHashMap<String, Tensor> stateDict,
      int numHeads, CacheShards shards) {
    this(uid, stateDict, numHeads, null, shards);
  }

  private TabularAttentionClassificationModel(String uid,
      LinkedHashMap<String, Tensor> stateDict, int numHeads, TrainRowCache cache,
      CacheShards shards) {
    this.uid = uid; // before the params: each Param records its parent's uid
    this.stateDict = stateDict;
    this.numHeads = numHeads;
    this.cache = cache;
    this.shards = shards;
    featuresCol = new Param<>(this, "featuresCol", "features column: " + FeatureColumn.EXPECTED);
    featureCols = new StringArrayParam(this, "featureCols", FeatureColumn.SCALARS_EXPECTED);
    predictionCol =
        new Param<>(this, "predictionCol", "output column of predicted class indices");
    probabilityCol =
        new Param<>(this, "probabilityCol", "output column of class probabilities, array<float>");
    setDefault(featuresCol, "features");
    setDefault(featureCols, new String[0]);
    setDefault(predictionCol, "prediction");
    setDefault(probabilityCol, "probability");
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

  public Param<String> predictionCol() {
    return predictionCol;
  }

  public Param<String> probabilityCol() {
    return probabilityCol;
  }

  public TabularAttentionClassificationModel setFeaturesCol(String c) {
    set(featuresCol, c);
    return this;
  }

  public TabularAttentionClassificationModel setFeatureCols(String... cols) {
    set(featureCols, cols);
    return this;
  }

  /** The train rows' statistics and keys/values the model scores against (broadcast path). */
  public TrainRowCache trainRowCache() {
    if (cache == null) {
      throw new IllegalStateException("the train-row cache is kept in " + shards.parts()
          + " shards under " + shards.dir() + ", not in the driver: see cacheShards()");
    }
    return cache;
  }

  /** Whether the cache is kept in shard files (above the broadcast limit at fit time). */
  public boolean isCacheSharded() {
    return shards != null;
  }

  /** Where the shards of a cache above the broadcast limit are; null when it is broadcast. */
  public CacheShards cacheShards() {
    return shards;
  }

  public int numHeads() {
    return numHeads;
  }

  @Override
  public StructType transformSchema(StructType schema) {
    features(schema);
    return outputSchema(schema, $(predictionCol), $(probabilityCol));
  }

  static StructType outputSchema(StructType schema, String prediction, String probability) {
    for (String out : new String[] {prediction, probability}) {
      if (Arrays.asList(schema.fieldNames()).contains(out)) {
        throw new IllegalArgumentException("output column '" + out + "' already exists");
      }
    }
    return schema.add(prediction, DataTypes.IntegerType, false)
        .add(probability, DataTypes.createArrayType(DataTypes.FloatType, false), false);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType out = transformSchema(dataset.schema());
    SparkSession spark = dataset.sparkSession();
    FeatureColumn fc = features(dataset.schema());
    if (shards != null) {
      return ShardedScoring.transform(dataset, out, fc, stateDict, numHeads, shards);
    }
    int threads = MosaicConfig.from(spark.sparkContext().getConf()).taskThreads();
    return dataset.toDF().mapPartitions(new CachedScoring(broadcast(spark.sparkContext()), fc,
        threads), Encoders.row(out));
  }

  /** The features reader; scalar columns must be as many as the train rows' features. */
  private FeatureColumn features(StructType schema) {
    FeatureColumn fc = FeatureColumn.of(schema, this, featuresCol, featureCols);
    int trained = cache != null ? cache.features() : shards.features();
    if (fc.fixedCount() >= 0 && fc.fixedCount() != trained) {
      throw new IllegalArgumentException("featureCols lists " + fc.fixedCount() + " columns "
          + Arrays.toString(fc.columns()) + ": expected " + trained + " (as the train rows)");
    }
    return fc;
  }

  static long broadcastBytes(SparkSession spark) {
    return JavaUtils.byteStringAsBytes(
        spark.conf().get(BROADCAST_BYTES, BROADCAST_BYTES_DEFAULT));
  }

  private synchronized Broadcast<CachedScoring.Bundle> broadcast(SparkContext sc) {
    if (broadcast == null || sc.isStopped()) {
      broadcast = JavaSparkContext.fromSparkContext(sc)
          .broadcast(new CachedScoring.Bundle(stateDict, numHeads, cache));
    }
    return broadcast;
  }

  @Override
  public TabularAttentionClassificationModel copy(ParamMap extra) {
    TabularAttentionClassificationModel copy =
        new TabularAttentionClassificationModel(uid, stateDict, numHeads, cache, shards);
    return copyValues(copy, extra).setParent(parent());
  }

  @Override
  public MLWriter write() {
    return new Writer(this);
  }

  public static MLReader<TabularAttentionClassificationModel> read() {
    return new Reader();
  }

  public static TabularAttentionClassificationModel load(String path) {
    return read().load(path);
  }

  /** Params as Spark ML's metadata; weights and cache as safetensors under {@code data/}. */
  private static final class Writer extends MLWriter {
    private final TabularAttentionClassificationModel model;

    Writer(TabularAttentionClassificationModel model) {
      this.model = model;
    }

    @Override
    public void saveImpl(String path) {
      DefaultParamsWriter$.MODULE$.saveMetadata(model, path, sparkSession());
      Path tmp = tempDir();
      try {
        Path weights = tmp.resolve(MODEL_FILE);
        try (NanoTabPfnModel m = NanoTabPfnModel.fromStateDict("the fitted model",
            model.stateDict, model.numHeads, null, 1)) {
          NanoTabPfnCheckpoint.save(m, weights);
        }
        Configuration conf = sparkSession().sparkContext().hadoopConfiguration();
        org.apache.hadoop.fs.Path data = new org.apache.hadoop.fs.Path(path, "data");
        FileSystem fs = data.getFileSystem(conf);
        List<Path> files = new ArrayList<>(List.of(weights));
        if (model.shards != null) { // task by task, file system to file system
          model.shards.copyTo(JavaSparkContext.fromSparkContext(sparkSession().sparkContext()),
              new org.apache.hadoop.fs.Path(data, SHARDS_DIR).toString());
        } else {
          Path cacheFile = tmp.resolve(CACHE_FILE);
          model.cache.save(cacheFile);
          files.add(cacheFile);
        }
        for (Path p : files) {
          fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(p.toUri()),
              new org.apache.hadoop.fs.Path(data, p.getFileName().toString()));
        }
      } catch (IOException e) {
        throw new UncheckedIOException("saving the model to " + path + " failed: " + e, e);
      } finally {
        deleteQuietly(tmp);
      }
    }
  }

  private static final class Reader extends MLReader<TabularAttentionClassificationModel> {
    @Override
    public TabularAttentionClassificationModel load(String path) {
      DefaultParamsReader.Metadata meta = DefaultParamsReader$.MODULE$.loadMetadata(path,
          sparkSession(), TabularAttentionClassificationModel.class.getName());
      Path tmp = tempDir();
      try {
        Configuration conf = sparkSession().sparkContext().hadoopConfiguration();
        org.apache.hadoop.fs.Path data = new org.apache.hadoop.fs.Path(path, "data");
        FileSystem fs = data.getFileSystem(conf);
        org.apache.hadoop.fs.Path shardsDir = new org.apache.hadoop.fs.Path(data, SHARDS_DIR);
        boolean sharded = fs.exists(shardsDir);
        for (String f : sharded ? new String[] {MODEL_FILE} : new String[] {MODEL_FILE,
            CACHE_FILE}) {
          fs.copyToLocalFile(false, new org.apache.hadoop.fs.Path(data, f),
              new org.apache.hadoop.fs.Path(tmp.resolve(f).toUri()), true);
        }
        Path weights = tmp.resolve(MODEL_FILE);
        int heads = Integer.parseInt(
            Safetensors.metadata(weights).get(NanoTabPfnCheckpoint.HEADS_KEY));
        LinkedHashMap<String, Tensor> stateDict = new LinkedHashMap<>();
        try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(weights, heads, 1)) {
          stateDict.putAll(m.stateDict());
        }
        TabularAttentionClassificationModel model = sharded
            ? new TabularAttentionClassificationModel(meta.uid(), stateDict, heads,
                CacheShards.load(conf, fs.makeQualified(shardsDir).toString()))
            : new TabularAttentionClassificationModel(meta.uid(), stateDict, heads,
                TrainRowCache.load(tmp.resolve(CACHE_FILE)));
        meta.getAndSetParams(model, scala.Option.empty());
        return model;
      } catch (IOException e) {
        throw new UncheckedIOException("loading the model from " + path + " failed: " + e, e);
      } finally {
        deleteQuietly(tmp);
      }
    }
  }

  private static Path tempDir() {
    try {
      return Files.createTempDirectory("mosaic-model");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a temporary directory: " + e, e);
    }
  }

  private static void deleteQuietly(Path dir) {
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a leftover temp directory is harmless
    }
  }
}
