package dev.mosaic.spark.train;

import static dev.mosaic.spark.train.TrainingCheckpoint.number;
import static dev.mosaic.spark.train.TrainingCheckpoint.value;

import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.prior.PriorSizes;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything that defines a pretraining run, and so everything a resumed run must agree on: the
 * model's shape, the batch (tables per step, summed over all ranks), the optimizer and its
 * schedule, the prior's seed and its curriculum (sizes grow from {@code startSizes} to
 * {@code endSizes} over the first {@code curriculumSteps} steps).
 *
 * <p>The batch does not depend on the number of ranks: table {@code slot} of step {@code s} is
 * {@code prior.sample(sizes(s), s, slot)} whichever rank draws it, so runs with different
 * {@code --sp} see the same data (and differ only in the order of float sums).
 */
public record PretrainSettings(NanoTabPfnShape shape, long steps, int batch, AdamWSettings adamW,
    LearningRateSchedule schedule, double clipNorm, long priorSeed, PriorSizes startSizes,
    PriorSizes endSizes, long curriculumSteps, int checkpointEvery) implements Serializable {

  public PretrainSettings {
    if (steps < 1) {
      throw new IllegalArgumentException("steps must be >= 1, got " + steps);
    }
    if (batch < 1) {
      throw new IllegalArgumentException("batch must be >= 1 table per step, got " + batch);
    }
    if (!(clipNorm > 0)) {
      throw new IllegalArgumentException("gradient clipping norm must be > 0, got " + clipNorm);
    }
    if (curriculumSteps < 0) {
      throw new IllegalArgumentException("curriculum steps must be >= 0, got " + curriculumSteps);
    }
    if (checkpointEvery < 1) {
      throw new IllegalArgumentException("checkpoint interval must be >= 1 step, got "
          + checkpointEvery);
    }
    if (endSizes.maxClasses() > shape.outputs()) {
      throw new IllegalArgumentException("the prior draws up to " + endSizes.maxClasses()
          + " classes but the model has " + shape.outputs() + " outputs: expected at most "
          + shape.outputs() + " classes");
    }
  }

  /** The prior's sizes at {@code step}: the curriculum's point, then {@code endSizes}. */
  public PriorSizes sizesAt(long step) {
    if (curriculumSteps == 0) {
      return endSizes;
    }
    return startSizes.towards(endSizes, (double) step / curriculumSteps);
  }

  /**
   * The settings as checkpoint metadata, so that a checkpoint says how it was made and a resumed
   * run can check that it continues the same run ({@link #describeDifference}).
   */
  public Map<String, String> metadata() {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("mosaic_pretrain_steps", Long.toString(steps));
    m.put("mosaic_pretrain_batch", Integer.toString(batch));
    m.put("mosaic_pretrain_lr", Double.toString(schedule.peak()));
    m.put("mosaic_pretrain_min_lr", Double.toString(schedule.min()));
    m.put("mosaic_pretrain_warmup", Integer.toString(schedule.warmupSteps()));
    m.put("mosaic_pretrain_clip", Double.toString(clipNorm));
    m.put("mosaic_pretrain_prior_seed", Long.toString(priorSeed));
    m.put("mosaic_pretrain_start_sizes", sizes(startSizes));
    m.put("mosaic_pretrain_end_sizes", sizes(endSizes));
    m.put("mosaic_pretrain_curriculum_steps", Long.toString(curriculumSteps));
    m.put("mosaic_pretrain_shape", shape.embedDim() + "," + shape.numHeads() + ","
        + shape.layers() + "," + shape.mlpHidden() + "," + shape.outputs());
    return m;
  }

  /**
   * The first setting in which {@code checkpoint}'s metadata (written by {@link #metadata}) differs
   * from these, as "name: checkpoint X, now Y", or null when they agree. The step count may grow
   * (a run extended past its first end), nothing else may change.
   */
  public String describeDifference(Map<String, String> checkpoint) {
    Map<String, String> now = metadata();
    for (Map.Entry<String, String> e : now.entrySet()) {
      if (e.getKey().equals("mosaic_pretrain_steps")) {
        continue;
      }
      String then = checkpoint.get(e.getKey());
      if (then == null) {
        return e.getKey() + ": missing from the checkpoint (not written by 'mosaic pretrain')";
      }
      if (!then.equals(e.getValue())) {
        return e.getKey() + ": checkpoint " + then + ", now " + e.getValue();
      }
    }
    return null;
  }

  private static String sizes(PriorSizes s) {
    return s.minRows() + ".." + s.maxRows() + " rows, " + s.maxFeatures() + " features, "
        + s.maxClasses() + " classes";
  }

  /**
   * The settings a checkpoint was made with ({@link #metadata}), for {@code steps} steps in all
   * (a resumed run may go on longer than the first one planned).
   *
   * @param adamW the optimizer's constants, from the checkpoint's optimizer state
   */
  public static PretrainSettings fromMetadata(String file, Map<String, String> meta,
      AdamWSettings adamW, long steps, int checkpointEvery) {
    int[] shape = ints(file, meta, "mosaic_pretrain_shape", ",", 5);
    double peak = number(file, meta, "mosaic_pretrain_lr");
    return new PretrainSettings(
        new NanoTabPfnShape(shape[0], shape[1], shape[2], shape[3], shape[4]), steps,
        (int) number(file, meta, "mosaic_pretrain_batch"), adamW,
        new LearningRateSchedule(peak, (int) number(file, meta, "mosaic_pretrain_warmup"), steps,
            number(file, meta, "mosaic_pretrain_min_lr")),
        number(file, meta, "mosaic_pretrain_clip"),
        (long) number(file, meta, "mosaic_pretrain_prior_seed"),
        parseSizes(file, meta, "mosaic_pretrain_start_sizes"),
        parseSizes(file, meta, "mosaic_pretrain_end_sizes"),
        (long) number(file, meta, "mosaic_pretrain_curriculum_steps"), checkpointEvery);
  }

  /** {@link #sizes}' format: "20..500 rows, 30 features, 10 classes". */
  private static PriorSizes parseSizes(String file, Map<String, String> meta, String key) {
    String v = value(file, meta, key);
    java.util.regex.Matcher m = java.util.regex.Pattern
        .compile("(\\d+)\\.\\.(\\d+) rows, (\\d+) features, (\\d+) classes").matcher(v);
    if (!m.matches()) {
      throw new IllegalArgumentException(file + ": __metadata__ " + key
          + " must read 'A..B rows, F features, C classes', got '" + v + "'");
    }
    return new PriorSizes(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
        Integer.parseInt(m.group(3)), Integer.parseInt(m.group(4)));
  }

  private static int[] ints(String file, Map<String, String> meta, String key, String sep,
      int count) {
    String v = value(file, meta, key);
    String[] parts = v.split(sep);
    if (parts.length != count) {
      throw new IllegalArgumentException(file + ": __metadata__ " + key + " must hold " + count
          + " integers, got '" + v + "'");
    }
    int[] out = new int[count];
    try {
      for (int i = 0; i < count; i++) {
        out[i] = Integer.parseInt(parts[i].trim());
      }
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(file + ": __metadata__ " + key + " must hold " + count
          + " integers, got '" + v + "'");
    }
    return out;
  }
}
