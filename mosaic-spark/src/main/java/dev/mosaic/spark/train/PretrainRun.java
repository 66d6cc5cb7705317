package dev.mosaic.spark.train;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.runner.BarrierRunner;
import dev.mosaic.spark.runner.MosaicContext;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkException;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The driver's side of data-parallel pretraining: a loop of barrier stages, each running the steps
 * up to the next checkpoint on {@code ctx.spSize()} tasks ({@link PretrainChunk}); between stages
 * the checkpoint (model + AdamW state, {@link TrainingCheckpoint}) and the loss log are the whole
 * state of the run. So a run resumes from its checkpoint ({@code resume}), and a stage that fails
 * for a reason a retry can cure (a task or executor died, a connection dropped) is run again from
 * the last checkpoint, at most {@code maxRestarts} times in a row: at most one checkpoint
 * interval of steps is lost. Errors that would recur (bad settings, divergence) end the run.
 *
 * <p>Why stages of a checkpoint interval rather than one stage for the whole run: Spark does not
 * retry a failed barrier result stage ({@link BarrierRunner}), and a driver loop can say what it
 * resumes from; a stage's start (task launch, rendezvous) costs well under a second, next to
 * tens of seconds of steps.
 */
public final class PretrainRun {
  /** How the run ended. */
  public record Result(long step, List<StepRecord> records, int restarts) {}

  private PretrainRun() {}

  /**
   * @param out the checkpoint path (Hadoop path or URI; on a cluster, a file system the executors
   *     share); the loss log goes beside it
   * @param resume continue from {@code out} if it exists (its settings must match); without it an
   *     existing {@code out} is refused
   * @param stopAt stop once this step is checkpointed (at most {@code s.steps()}), to continue
   *     later with {@code resume}: a run longer than one sitting, with the schedule of the whole
   * @param progress called on the driver after each stage with the stage's records
   */
  public static Result run(MosaicContext ctx, PretrainSettings s, String out, boolean resume,
      long stopAt, int maxRestarts, long initSeed, Consumer<List<StepRecord>> progress) {
    if (stopAt < 1 || stopAt > s.steps()) {
      throw new IllegalArgumentException("stop step must be in 1.." + s.steps() + " (the run's"
          + " steps), got " + stopAt);
    }
    Configuration conf = ctx.jsc().hadoopConfiguration();
    long step = start(s, out, resume, initSeed, conf);
    List<StepRecord> records = LossLog.read(LossLog.pathFor(out), step, conf);
    SerializableConfiguration shipped = new SerializableConfiguration(conf);
    int p = ctx.spSize();
    List<Integer> ranks = IntStream.range(0, p).boxed().toList();
    int restarts = 0;
    int failuresInARow = 0;
    while (step < stopAt) {
      long to = Math.min(stopAt, (step / s.checkpointEvery() + 1) * s.checkpointEvery());
      ctx.jsc().setJobGroup("mosaic-pretrain", "Mosaic pretrain: steps " + step + ".." + to
          + " on " + p + " tasks", false);
      List<StepRecord> chunk;
      try {
        chunk = BarrierRunner.collect(ctx.jsc().parallelize(ranks, p),
            new PretrainChunk(s, out, shipped, step, to), ctx.config(), "cpu", StepRecord.class);
      } catch (Exception e) { // Spark's SparkException is checked, though Scala declares none
        if (!curable(e) || ++failuresInARow > maxRestarts) {
          throw e;
        }
        restarts++;
        long at = TrainingCheckpoint.load(out, conf).step();
        System.err.printf("mosaic pretrain: the stage for steps %d..%d failed (%s); resuming from"
            + " the checkpoint at step %d (restart %d of at most %d in a row)%n", step, to,
            oneLine(e), at, failuresInARow, maxRestarts);
        step = at;
        records = new ArrayList<>(records.subList(0, (int) Math.min(records.size(), step)));
        continue;
      }
      failuresInARow = 0;
      records.addAll(chunk);
      LossLog.write(LossLog.pathFor(out), records, conf);
      step = to;
      progress.accept(chunk);
    }
    return new Result(step, records, restarts);
  }

  /**
   * The step to start from: the checkpoint's when resuming (after checking it continues this
   * run), else 0 after writing the seeded initial weights as the step-0 checkpoint.
   */
  private static long start(PretrainSettings s, String out, boolean resume, long initSeed,
      Configuration conf) {
    boolean exists = TrainingCheckpoint.exists(out, conf);
    if (exists && resume) {
      TrainingCheckpoint.Loaded l = TrainingCheckpoint.load(out, conf);
      String diff = s.describeDifference(l.metadata());
      if (diff != null) {
        throw new IllegalArgumentException("--resume: checkpoint " + out + " was made with other"
            + " settings (" + diff + "); expected the settings of the run it continues");
      }
      if (l.step() > s.steps()) {
        throw new IllegalArgumentException("--resume: checkpoint " + out + " is at step "
            + l.step() + ", past --steps " + s.steps() + ": expected --steps of at least "
            + l.step());
      }
      return l.step();
    }
    if (exists) {
      throw new IllegalArgumentException("--out " + out + " already holds a checkpoint: pass"
          + " --resume to continue it, or choose another --out");
    }
    Map<String, Tensor> init = NanoTabPfnInit.seeded(s.shape(), initSeed);
    TrainingCheckpoint.save(out, init, s.shape().numHeads(),
        new AdamW(s.adamW()), s.metadata(), conf);
    return 0;
  }

  /** A failure a rerun from the checkpoint can cure: Spark's own (task or executor lost), I/O. */
  static boolean curable(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof SparkException || t instanceof CommException || t instanceof IOException
          || t instanceof java.io.UncheckedIOException) {
        return true;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return false;
  }

  private static String oneLine(Throwable e) {
    String m = String.valueOf(e.getMessage());
    int nl = m.indexOf('\n');
    return (nl >= 0 ? m.substring(0, nl) : m);
  }
}
