package dev.mosaic.ml;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.layers.KeyValues;
import dev.mosaic.spark.model.TableStats;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FileUtil;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.SerializableConfiguration;

/**
 * A train-row cache too large to broadcast, kept where the fit's tasks computed it: p shard files
 * under one directory of a Hadoop file system that every executor reads (HDFS, S3, a shared
 * mount; on a {@code local} master, the local disk). Shard r holds, per block, the row-attention
 * keys/values of the fit's r-th contiguous slice of train rows; task r of a scoring stage reads
 * shard r and nothing else. This object is the small index (statistics, shard sizes, where the
 * files are): the driver never reads a shard.
 */
public final class CacheShards implements Serializable {
  private static final long serialVersionUID = 1L;
  /** Directory under which fit writes caches above the broadcast limit. */
  public static final String CACHE_DIR = "spark.mosaic.cache.dir";
  static final String FORMAT = "mosaic-train-row-cache-shards/1";
  static final String INDEX = "index.safetensors";

  private final String dir;
  private final float[] mean;
  private final float[] scale;
  private final float labelMean;
  private final long nTrain;
  private final int classes;
  private final int[] shardRows;
  private final int layers;
  private final int embedDim;

  CacheShards(String dir, TableStats stats, int classes, int[] shardRows, int layers,
      int embedDim) {
    this.dir = dir;
    this.mean = stats.mean();
    this.scale = stats.scale();
    this.labelMean = stats.labelMean();
    this.nTrain = stats.nTrain();
    this.classes = classes;
    this.shardRows = shardRows.clone();
    this.layers = layers;
    this.embedDim = embedDim;
    if (Arrays.stream(shardRows).asLongStream().sum() != nTrain) {
      throw new IllegalArgumentException("the shards hold " + Arrays.toString(shardRows)
          + " rows: expected nTrain " + nTrain + " in all");
    }
  }

  /** Where the shard files are (a Hadoop path). */
  public String dir() {
    return dir;
  }

  /** The number of shards, which is the number of tasks that score. */
  public int parts() {
    return shardRows.length;
  }

  /** Train rows per shard. */
  public int[] shardRows() {
    return shardRows.clone();
  }

  public TableStats stats() {
    return new TableStats(mean, scale, labelMean, nTrain);
  }

  /** {@code max(yTrain) + 1}, or 0 for regression targets. */
  public int classes() {
    return classes;
  }

  public int features() {
    return mean.length;
  }

  /** Bytes of the keys and values of all shards. */
  public long bytes() {
    return bytes(layers, mean.length, nTrain, embedDim);
  }

  /** Bytes of a cache of {@code layers} blocks: K and V (E floats each) per cell of a train row. */
  static long bytes(int layers, int features, long nTrain, int embedDim) {
    return 8L * layers * (features + 1) * nTrain * embedDim;
  }

  /**
   * A new, empty directory for the shards of one fit: under {@code spark.mosaic.cache.dir} if
   * set; else on a {@code local} master under the temporary directory (deleted when the JVM
   * exits); else under the SparkContext's checkpoint directory. Without any of these a cluster
   * has no directory every executor can read: the error says what to set.
   */
  static String newDir(SparkSession spark, String uid, long bytes, long limit) {
    SparkContext sc = spark.sparkContext();
    String name = "mosaic-cache-" + uid + "-" + UUID.randomUUID();
    String base = spark.conf().get(CACHE_DIR, "");
    boolean temporary = false;
    if (base.isBlank()) {
      if (sc.master().startsWith("local")) {
        base = new java.io.File(System.getProperty("java.io.tmpdir")).toURI().toString();
        temporary = true;
      } else if (sc.getCheckpointDir().isDefined()) {
        base = sc.getCheckpointDir().get();
      } else {
        throw new IllegalArgumentException("the train-row cache needs " + bytes + " bytes, more"
            + " than " + TabularAttentionClassificationModel.BROADCAST_BYTES + " (" + limit
            + " bytes), so fit keeps it in shards: set " + CACHE_DIR + " to a directory every"
            + " executor can read (HDFS, S3, a shared mount), or raise the limit");
      }
    }
    Path path = new Path(base, name);
    try {
      FileSystem fs = path.getFileSystem(sc.hadoopConfiguration());
      fs.mkdirs(path);
      if (temporary) {
        fs.deleteOnExit(path);
      }
      return fs.makeQualified(path).toString();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the cache directory " + path + ": " + e, e);
    }
  }

  static String shardFile(int rank) {
    return String.format("shard-%05d.safetensors", rank);
  }

  /** Task side: writes shard {@code rank} (per block, its rows' keys/values) under {@code dir}. */
  static void writeShard(Configuration conf, String dir, int rank, List<KeyValues> blocks) {
    Map<String, Tensor> t = new LinkedHashMap<>();
    for (int i = 0; i < blocks.size(); i++) {
      KeyValues kv = blocks.get(i);
      t.put(blockName(i), Tensor.of(kv.data(), kv.batch(), kv.seq(), 2 * kv.embedDim()));
    }
    Map<String, String> meta = Map.of("format", FORMAT, "rank", Integer.toString(rank));
    upload(conf, new Path(dir, shardFile(rank)), local -> Safetensors.write(local, t, meta));
  }

  /** Task side: shard {@code rank}'s keys/values, per block, checked against the index. */
  List<KeyValues> readShard(Configuration conf, int rank) {
    Path file = new Path(dir, shardFile(rank));
    Map<String, Tensor> t = download(conf, file, Safetensors::read);
    List<KeyValues> out = new ArrayList<>(layers);
    for (int i = 0; i < layers; i++) {
      Tensor kv = t.get(blockName(i));
      if (kv == null || kv.rank() != 3 || kv.dim(0) != mean.length + 1
          || kv.dim(1) != shardRows[rank] || kv.dim(2) != 2 * embedDim) {
        throw new IllegalArgumentException("cache shard " + file + ": tensor '" + blockName(i)
            + "' must be [" + (mean.length + 1) + ", " + shardRows[rank] + ", " + 2 * embedDim
            + "], got " + kv);
      }
      out.add(new KeyValues(kv.data(), kv.dim(0), kv.dim(1), embedDim));
    }
    return out;
  }

  /** Driver side: writes this index (statistics and sizes, no keys/values) into {@link #dir}. */
  void writeIndex(Configuration conf) {
    Map<String, Tensor> t = new LinkedHashMap<>();
    t.put("stats.mean", Tensor.of(mean, mean.length));
    t.put("stats.scale", Tensor.of(scale, scale.length));
    t.put("stats.label_mean", Tensor.of(new float[] {labelMean}, 1));
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", FORMAT);
    meta.put("n_train", Long.toString(nTrain));
    meta.put("classes", Integer.toString(classes));
    meta.put("layers", Integer.toString(layers));
    meta.put("embed_dim", Integer.toString(embedDim));
    StringBuilder rows = new StringBuilder();
    for (int r : shardRows) {
      rows.append(rows.length() == 0 ? "" : ",").append(r);
    }
    meta.put("shard_rows", rows.toString());
    upload(conf, new Path(dir, INDEX), local -> Safetensors.write(local, t, meta));
  }

  /** The index {@link #writeIndex} wrote in {@code dir}; the shards stay where they are. */
  static CacheShards load(Configuration conf, String dir) {
    Path file = new Path(dir, INDEX);
    return download(conf, file, local -> {
      Map<String, String> meta = Safetensors.metadata(local);
      if (!FORMAT.equals(meta.get("format"))) {
        throw new IllegalArgumentException("cache index " + file + ": metadata 'format' is "
            + meta.get("format") + ", expected " + FORMAT);
      }
      Map<String, Tensor> t = Safetensors.read(local);
      int[] rows = Arrays.stream(meta.get("shard_rows").split(","))
          .mapToInt(Integer::parseInt).toArray();
      TableStats stats = new TableStats(t.get("stats.mean").data(), t.get("stats.scale").data(),
          t.get("stats.label_mean").data()[0], Long.parseLong(meta.get("n_train")));
      return new CacheShards(dir, stats, Integer.parseInt(meta.get("classes")), rows,
          Integer.parseInt(meta.get("layers")), Integer.parseInt(meta.get("embed_dim")));
    });
  }

  /**
   * The shards copied under {@code target} by p Spark tasks, one file each, so no keys/values
   * pass through the driver; then the index, by the driver.
   */
  CacheShards copyTo(JavaSparkContext jsc, String target) {
    SerializableConfiguration conf = new SerializableConfiguration(jsc.hadoopConfiguration());
    String from = dir;
    List<Integer> ranks = new ArrayList<>();
    for (int r = 0; r < parts(); r++) {
      ranks.add(r);
    }
    jsc.parallelize(ranks, ranks.size()).foreach(r -> {
      Path src = new Path(from, shardFile(r));
      Path dst = new Path(target, shardFile(r));
      Configuration c = conf.value();
      if (!FileUtil.copy(src.getFileSystem(c), src, dst.getFileSystem(c), dst, false, true, c)) {
        throw new IOException("copying cache shard " + src + " to " + dst + " failed");
      }
    });
    CacheShards copy = new CacheShards(target, stats(), classes, shardRows, layers, embedDim);
    copy.writeIndex(jsc.hadoopConfiguration());
    return copy;
  }

  private static String blockName(int i) {
    return "blocks." + i + ".row_kv";
  }

  /** Writes through a local temporary file (Safetensors writes local files) to {@code target}. */
  private static void upload(Configuration conf, Path target, Consumer<java.nio.file.Path> write) {
    java.nio.file.Path tmp = tempDir();
    try {
      java.nio.file.Path local = tmp.resolve(target.getName());
      write.accept(local);
      FileSystem fs = target.getFileSystem(conf);
      fs.copyFromLocalFile(true, true, new Path(local.toUri()), target);
    } catch (IOException e) {
      throw new UncheckedIOException("writing " + target + " failed: " + e, e);
    } finally {
      deleteQuietly(tmp);
    }
  }

  /** Reads {@code source} through a local temporary copy. */
  private static <T> T download(Configuration conf, Path source,
      Function<java.nio.file.Path, T> read) {
    java.nio.file.Path tmp = tempDir();
    try {
      java.nio.file.Path local = tmp.resolve(source.getName());
      source.getFileSystem(conf).copyToLocalFile(false, source, new Path(local.toUri()), true);
      return read.apply(local);
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + source + " failed: " + e, e);
    } finally {
      deleteQuietly(tmp);
    }
  }

  private static java.nio.file.Path tempDir() {
    try {
      return Files.createTempDirectory("mosaic-cache-io");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a temporary directory: " + e, e);
    }
  }

  private static void deleteQuietly(java.nio.file.Path dir) {
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a leftover temporary directory is harmless
    }
  }

  @Override
  public String toString() {
    return "CacheShards(" + parts() + " shards " + Arrays.toString(shardRows) + " under " + dir
        + ", " + bytes() + " bytes)";
  }
}
