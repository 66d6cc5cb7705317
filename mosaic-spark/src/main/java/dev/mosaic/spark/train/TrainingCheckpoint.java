package dev.mosaic.spark.train;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnShape;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * A training checkpoint: the model as a nanoTabPFN checkpoint ({@code MODEL.safetensors}, loads in
 * PyTorch unchanged, {@value NanoTabPfnCheckpoint#HEADS_KEY} in its metadata) and beside it
 * AdamW's state ({@code MODEL.optim.safetensors}: {@code exp_avg.<name>} and
 * {@code exp_avg_sq.<name>} per parameter, the hyper-parameters in the metadata). Both carry the
 * step in their metadata ({@value #STEP_KEY}), so a pair from two different saves is refused.
 * Written through Hadoop's {@code FileSystem}, each file atomically (temp + rename): the
 * optimizer state first, then the model.
 */
public final class TrainingCheckpoint {
  /** Metadata key of the optimizer steps taken when the checkpoint was written. */
  public static final String STEP_KEY = "mosaic_step";
  private static final String EXP_AVG = "exp_avg.";
  private static final String EXP_AVG_SQ = "exp_avg_sq.";

  /**
   * What {@link #load} returns.
   *
   * @param metadata the model file's metadata (the caller's extra keys included)
   */
  public record Loaded(Map<String, Tensor> stateDict, int numHeads, AdamW optimizer, long step,
      Map<String, String> metadata) {}

  private TrainingCheckpoint() {}

  /** Where the optimizer state of {@code modelPath} goes: {@code X.safetensors → X.optim.safetensors}. */
  public static String optimizerPath(String modelPath) {
    return besideModel(modelPath, ".optim.safetensors");
  }

  /**
   * A file that travels with the checkpoint: {@code X.safetensors → X + suffix} (the optimizer
   * state, the loss log, the loss plot).
   */
  public static String besideModel(String modelPath, String suffix) {
    String ext = ".safetensors";
    String base = modelPath.endsWith(ext)
        ? modelPath.substring(0, modelPath.length() - ext.length()) : modelPath;
    return base + suffix;
  }

  /** Whether a checkpoint (both files) exists at {@code modelPath}. */
  public static boolean exists(String modelPath, Configuration conf) {
    return HadoopFiles.exists(modelPath, conf) && HadoopFiles.exists(optimizerPath(modelPath), conf);
  }

  /**
   * Writes the model and the optimizer state.
   *
   * @param modelPath a Hadoop path or URI (a plain local path works)
   * @param stateDict nanoTabPFN's tensors (checked here)
   * @param extra more metadata for both files (training settings, prior seed), or empty
   */
  public static void save(String modelPath, Map<String, Tensor> stateDict, int numHeads,
      AdamW optimizer, Map<String, String> extra, Configuration conf) {
    NanoTabPfnShape shape = NanoTabPfnCheckpoint.check(modelPath, stateDict, numHeads);
    Map<String, Tensor> ordered = new LinkedHashMap<>();
    for (String name : shape.tensorShapes().keySet()) {
      ordered.put(name, stateDict.get(name));
    }
    String step = Long.toString(optimizer.steps());
    Map<String, String> optimMeta = new LinkedHashMap<>(extra);
    AdamWSettings s = optimizer.settings();
    optimMeta.put("optimizer", "AdamW");
    optimMeta.put("beta1", Double.toString(s.beta1()));
    optimMeta.put("beta2", Double.toString(s.beta2()));
    optimMeta.put("eps", Double.toString(s.eps()));
    optimMeta.put("weight_decay", Double.toString(s.weightDecay()));
    optimMeta.put(STEP_KEY, step);
    Map<String, Tensor> state = new LinkedHashMap<>();
    optimizer.expAvg().forEach((k, v) -> state.put(EXP_AVG + k, v));
    optimizer.expAvgSq().forEach((k, v) -> state.put(EXP_AVG_SQ + k, v));
    HadoopFiles.writeAtomically(optimizerPath(modelPath), conf,
        local -> Safetensors.write(local, state, optimMeta));
    Map<String, String> modelMeta = new LinkedHashMap<>(extra);
    modelMeta.put(NanoTabPfnCheckpoint.HEADS_KEY, Integer.toString(numHeads));
    modelMeta.put(STEP_KEY, step);
    HadoopFiles.writeAtomically(modelPath, conf,
        local -> Safetensors.write(local, ordered, modelMeta));
  }

  /** Reads a checkpoint written by {@link #save}; every inconsistency is a one-line error. */
  public static Loaded load(String modelPath, Configuration conf) {
    String optimPath = optimizerPath(modelPath);
    Contents model = HadoopFiles.read(modelPath, conf, TrainingCheckpoint::contents);
    Contents optim = HadoopFiles.read(optimPath, conf, TrainingCheckpoint::contents);
    int heads = positiveInt(modelPath, model.metadata(), NanoTabPfnCheckpoint.HEADS_KEY);
    NanoTabPfnCheckpoint.check(modelPath, model.tensors(), heads);
    long step = nonNegativeLong(modelPath, model.metadata(), STEP_KEY);
    long optimStep = nonNegativeLong(optimPath, optim.metadata(), STEP_KEY);
    if (step != optimStep) {
      throw new IllegalArgumentException("checkpoint " + modelPath + " is at step " + step
          + " but its optimizer state " + optimPath + " is at step " + optimStep
          + ": expected the pair from one save");
    }
    AdamWSettings settings = new AdamWSettings(number(optimPath, optim.metadata(), "beta1"),
        number(optimPath, optim.metadata(), "beta2"), number(optimPath, optim.metadata(), "eps"),
        number(optimPath, optim.metadata(), "weight_decay"));
    Map<String, Tensor> m = new LinkedHashMap<>();
    Map<String, Tensor> v = new LinkedHashMap<>();
    for (Map.Entry<String, Tensor> e : optim.tensors().entrySet()) {
      String name = e.getKey();
      boolean first = name.startsWith(EXP_AVG);
      boolean second = name.startsWith(EXP_AVG_SQ);
      String param = second ? name.substring(EXP_AVG_SQ.length())
          : first ? name.substring(EXP_AVG.length()) : null;
      Tensor p = param == null ? null : model.tensors().get(param);
      if (p == null) {
        throw new IllegalArgumentException("optimizer state " + optimPath + " has tensor '" + name
            + "' that matches no parameter of " + modelPath);
      }
      if (!Arrays.equals(p.shape(), e.getValue().shape())) {
        throw new IllegalArgumentException("optimizer state " + optimPath + ": tensor '" + name
            + "' has shape " + Arrays.toString(e.getValue().shape()) + ", expected "
            + Arrays.toString(p.shape()) + " (its parameter's)");
      }
      (second ? v : m).put(param, e.getValue());
    }
    AdamW optimizer = AdamW.restore(settings, step, m, v);
    return new Loaded(model.tensors(), heads, optimizer, step, model.metadata());
  }

  private record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  private static Contents contents(java.nio.file.Path local) {
    return new Contents(Safetensors.read(local), Safetensors.metadata(local));
  }

  static String value(String file, Map<String, String> meta, String key) {
    String v = meta.get(key);
    if (v == null) {
      throw new IllegalArgumentException(file + " has no __metadata__ " + key
          + ": expected a checkpoint written by Mosaic's training");
    }
    return v.trim();
  }

  private static int positiveInt(String file, Map<String, String> meta, String key) {
    long v = nonNegativeLong(file, meta, key);
    if (v < 1 || v > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(file + ": __metadata__ " + key
          + " must be a positive integer, got '" + meta.get(key) + "'");
    }
    return (int) v;
  }

  private static long nonNegativeLong(String file, Map<String, String> meta, String key) {
    String v = value(file, meta, key);
    try {
      long n = Long.parseLong(v);
      if (n >= 0) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new IllegalArgumentException(file + ": __metadata__ " + key
        + " must be a non-negative integer, got '" + v + "'");
  }

  static double number(String file, Map<String, String> meta, String key) {
    String v = value(file, meta, key);
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(file + ": __metadata__ " + key
          + " must be a number, got '" + v + "'");
    }
  }
}
