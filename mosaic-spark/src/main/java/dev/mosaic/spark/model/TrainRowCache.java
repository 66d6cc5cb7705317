package dev.mosaic.spark.model;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.layers.KeyValues;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a nanoTabPFN model needs from its train rows to score any test rows: the encoders'
 * {@link TableStats} and, per block, the row attention's keys and values of the train rows
 * (every column). Train rows never attend to test rows, so these do not depend on the test rows:
 * computed once ("fit"), they score any number of test rows later ({@link CachedScorer}) with the
 * same numbers as {@link NanoTabPfnModel#logits}. Serialisable (Spark broadcast) and stored as
 * safetensors ({@link #save}, {@link #load}).
 *
 * @param classes {@code max(yTrain) + 1} when the labels are class ids, else 0 (regression)
 * @param blocks per block, the train rows' keys/values {@code (columns, nTrain, 2E)}
 */
public record TrainRowCache(float[] mean, float[] scale, float labelMean, long nTrain,
    int classes, List<KeyValues> blocks) implements Serializable {
  static final String FORMAT = "mosaic-train-row-cache/1";

  public TrainRowCache {
    blocks = List.copyOf(blocks);
    stats(mean, scale, labelMean, nTrain); // validates
    for (int i = 0; i < blocks.size(); i++) {
      KeyValues kv = blocks.get(i);
      if (kv.seq() != nTrain || kv.batch() != mean.length + 1) {
        throw new IllegalArgumentException("block " + i + "'s keys/values cover " + kv.seq()
            + " rows x " + kv.batch() + " columns: expected nTrain " + nTrain + " x "
            + (mean.length + 1) + " (features + target)");
      }
    }
  }

  private static TableStats stats(float[] mean, float[] scale, float labelMean, long nTrain) {
    return new TableStats(mean, scale, labelMean, nTrain);
  }

  /** The encoders' statistics of the train rows. */
  public TableStats stats() {
    return stats(mean, scale, labelMean, nTrain);
  }

  public int features() {
    return mean.length;
  }

  /** Bytes of the cached keys and values (what a broadcast of this cache ships). */
  public long bytes() {
    long b = 0;
    for (KeyValues kv : blocks) {
      b += kv.bytes();
    }
    return b + 8L * mean.length;
  }

  /** The cache of {@code model} for train rows {@code xTrain} (all rows) with labels yTrain. */
  public static TrainRowCache build(NanoTabPfnModel model, Tensor xTrain, float[] yTrain,
      int threads) {
    if (xTrain.rank() != 2 || xTrain.dim(0) != yTrain.length) {
      throw new IllegalArgumentException("xTrain must be [nTrain, features] with one row per"
          + " label (" + yTrain.length + "), got " + xTrain);
    }
    TableStats stats = TableStats.ofTrainRows(xTrain, yTrain);
    return of(stats, classesOrZero(yTrain),
        List.of(shardKeyValues(model, xTrain, yTrain, 0, stats, threads)));
  }

  /**
   * The cache from the shards of train rows that separate tasks computed, in row order.
   *
   * @param shards per shard, per block, its rows' keys/values ({@link #shardKeyValues})
   */
  public static TrainRowCache of(TableStats stats, int classes, List<List<KeyValues>> shards) {
    if (shards.isEmpty()) {
      throw new IllegalArgumentException("shards is empty: expected at least one");
    }
    int layers = shards.get(0).size();
    List<KeyValues> blocks = new ArrayList<>(layers);
    for (int i = 0; i < layers; i++) {
      List<KeyValues> parts = new ArrayList<>(shards.size());
      for (List<KeyValues> s : shards) {
        if (s.size() != layers) {
          throw new IllegalArgumentException("a shard has keys/values for " + s.size()
              + " blocks, another for " + layers + ": expected the same");
        }
        parts.add(s.get(i));
      }
      blocks.add(KeyValues.concat(parts));
    }
    return new TrainRowCache(stats.mean(), stats.scale(), stats.labelMean(), stats.nTrain(),
        classes, blocks);
  }

  /**
   * Per block, the row attention's keys/values of one shard of train rows (table rows
   * {@code rowOffset ..}; all of them train rows), running the blocks over the shard: through
   * the model's row strategy, so inside a ring the shards' rows attend to each other's.
   *
   * @param yShard the shard's labels
   */
  public static List<KeyValues> shardKeyValues(NanoTabPfnModel model, Tensor xShard,
      float[] yShard, long rowOffset, TableStats stats, int threads) {
    long nTrain = stats.nTrain();
    if (rowOffset + xShard.dim(0) > nTrain) {
      throw new IllegalArgumentException("the shard's rows " + rowOffset + ".."
          + (rowOffset + xShard.dim(0) - 1) + " are not all train rows (nTrain " + nTrain + ")");
    }
    List<KeyValues> out = new ArrayList<>();
    try (Parallel parallel = new Parallel(threads, "mosaic-train-cache")) {
      Tensor table = model.embed(xShard, yShard, rowOffset, nTrain, stats);
      for (NanoTabPfnBlock b : model.blocks()) {
        Tensor t = b.cellStep(table);
        out.add(b.rowAttention().keyValues(t));
        t = b.rowStep(t, b.rowAttention().forward(t, nTrain));
        table = b.mlpStep(t, parallel);
      }
    }
    return out;
  }

  /** {@code max(yTrain) + 1} when every label is a class id, else 0 (regression targets). */
  public static int classesOrZero(float[] yTrain) {
    for (float y : yTrain) {
      if (y < 0 || y != Math.rint(y) || y > Integer.MAX_VALUE - 1) {
        return 0;
      }
    }
    return NanoTabPfnModel.classes(yTrain);
  }

  /** Writes the cache as safetensors (F32 tensors, sizes in the metadata). */
  public void save(Path file) {
    Map<String, Tensor> t = new LinkedHashMap<>();
    t.put("stats.mean", Tensor.of(mean, mean.length));
    t.put("stats.scale", Tensor.of(scale, scale.length));
    t.put("stats.label_mean", Tensor.of(new float[] {labelMean}, 1));
    for (int i = 0; i < blocks.size(); i++) {
      KeyValues kv = blocks.get(i);
      t.put(blockName(i), Tensor.of(kv.data(), kv.batch(), kv.seq(), 2 * kv.embedDim()));
    }
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", FORMAT);
    meta.put("n_train", Long.toString(nTrain));
    meta.put("classes", Integer.toString(classes));
    meta.put("layers", Integer.toString(blocks.size()));
    Safetensors.write(file, t, meta);
  }

  /** Reads a cache {@link #save} wrote; errors name the file and what is wrong. */
  public static TrainRowCache load(Path file) {
    Map<String, String> meta = Safetensors.metadata(file);
    if (!FORMAT.equals(meta.get("format"))) {
      throw new IllegalArgumentException("train-row cache " + file + ": metadata 'format' is "
          + meta.get("format") + ", expected " + FORMAT);
    }
    Map<String, Tensor> t = Safetensors.read(file);
    int layers = Integer.parseInt(meta.get("layers"));
    List<KeyValues> blocks = new ArrayList<>(layers);
    for (int i = 0; i < layers; i++) {
      Tensor kv = t.get(blockName(i));
      if (kv == null || kv.rank() != 3 || kv.dim(2) % 2 != 0) {
        throw new IllegalArgumentException("train-row cache " + file + ": tensor '"
            + blockName(i) + "' must be [columns, nTrain, 2E], got " + kv);
      }
      blocks.add(new KeyValues(kv.data(), kv.dim(0), kv.dim(1), kv.dim(2) / 2));
    }
    return new TrainRowCache(t.get("stats.mean").data(), t.get("stats.scale").data(),
        t.get("stats.label_mean").data()[0], Long.parseLong(meta.get("n_train")),
        Integer.parseInt(meta.get("classes")), Collections.unmodifiableList(blocks));
  }

  private static String blockName(int i) {
    return "blocks." + i + ".row_kv";
  }
}
