package dev.mosaic.ml;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.KeyValues;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.ShardedCacheScorer;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.TaskEnv;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Scoring against a cache kept in p shards ({@link CacheShards}): one barrier stage of p tasks.
 * The test rows are dealt over the tasks (round robin: how they are split does not change a
 * row's output); task r reads K/V shard r, and the test rows' queries visit the shards in a
 * ring ({@link ShardedCacheScorer}). The stage feeds a shuffle, so downstream actions that read
 * only some partitions ({@code show}, {@code limit}) work and Spark may retry the whole stage.
 */
final class ShardedScoring {
  private ShardedScoring() {}

  static Dataset<Row> transform(Dataset<?> dataset, StructType out, FeatureColumn features,
      LinkedHashMap<String, Tensor> stateDict, int numHeads, CacheShards shards) {
    if (dataset.isStreaming()) {
      throw new IllegalArgumentException("the train-row cache (" + shards.bytes() + " bytes) is"
          + " kept in " + shards.parts() + " shards, which scores in a barrier stage: a streaming"
          + " micro-batch needs the broadcast path (raise "
          + TabularAttentionClassificationModel.BROADCAST_BYTES + " and fit again)");
    }
    SparkSession spark = dataset.sparkSession();
    int p = shards.parts();
    MosaicContext ctx = MosaicContext.init(spark, p);
    SerializableConfiguration conf =
        new SerializableConfiguration(ctx.jsc().hadoopConfiguration());
    JavaRDD<Row> dealt = dataset.toDF().javaRDD().repartition(p);
    ShardFunction<Row, Row> fn = (env, rows) ->
        score(env, rows, features, stateDict, numHeads, shards, conf);
    JavaRDD<Row> scored = BarrierRunner.run(dealt, fn, ctx.config(), Row.class).repartition(p);
    return spark.createDataFrame(scored, out);
  }

  private static Iterator<Row> score(TaskEnv env, Iterator<Row> input, FeatureColumn features,
      LinkedHashMap<String, Tensor> stateDict, int numHeads, CacheShards shards,
      SerializableConfiguration conf) {
    List<Row> rows = new ArrayList<>();
    input.forEachRemaining(rows::add);
    int f = shards.features();
    float[] x = new float[rows.size() * f];
    for (int i = 0; i < rows.size(); i++) {
      String name = "row " + i + " of scoring task " + env.rank();
      float[] v = features.read(rows.get(i), name);
      if (v.length != f) {
        throw new IllegalArgumentException(features.describe() + " has " + v.length
            + " features in " + name + ", expected " + f + " (as the train rows)");
      }
      System.arraycopy(v, 0, x, i * f, f);
    }
    List<KeyValues> shard = shards.readShard(conf.value(), env.rank());
    int threads = env.config().taskThreads();
    Tensor probs;
    try (NanoTabPfnModel model = NanoTabPfnModel.fromStateDict("the fitted model", stateDict,
            numHeads, null, threads);
        ShardedCacheScorer scorer = new ShardedCacheScorer(model, shards.stats(),
            shards.classes(), shard, env.comm(), threads)) {
      probs = scorer.probabilities(scorer.logits(Tensor.of(x, rows.size(), f)));
    }
    int classes = probs.dim(1);
    List<Row> out = new ArrayList<>(rows.size());
    for (int i = 0; i < rows.size(); i++) {
      Row in = rows.get(i);
      Object[] values = new Object[in.length() + 2];
      for (int c = 0; c < in.length(); c++) {
        values[c] = in.get(c);
      }
      float[] p = new float[classes];
      System.arraycopy(probs.data(), i * classes, p, 0, classes);
      values[in.length()] = CachedScoring.argMax(p);
      values[in.length() + 1] = p;
      out.add(RowFactory.create(values));
    }
    return out.iterator();
  }
}
