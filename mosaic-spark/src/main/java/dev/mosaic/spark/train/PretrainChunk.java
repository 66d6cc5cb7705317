package dev.mosaic.spark.train;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.prior.Prior;
import dev.mosaic.spark.runner.ShardFunction;
import dev.mosaic.spark.runner.TaskEnv;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.spark.util.SerializableConfiguration;

/**
 * What each barrier task of one pretraining stage runs: steps {@code from} (inclusive) to
 * {@code to} (exclusive), starting from the checkpoint at {@code checkpoint}, which must be at
 * step {@code from}; rank 0 then writes the checkpoint at step {@code to} and returns the steps'
 * records. The checkpoint is the only state that crosses stages: a stage that fails (a task or an
 * executor died) is simply run again from it, so at most one stage's steps are lost.
 */
final class PretrainChunk implements ShardFunction<Integer, StepRecord> {
  private static final long serialVersionUID = 1L;
  private final PretrainSettings settings;
  private final String checkpoint;
  private final SerializableConfiguration conf;
  private final long from;
  private final long to;

  PretrainChunk(PretrainSettings settings, String checkpoint, SerializableConfiguration conf,
      long from, long to) {
    this.settings = settings;
    this.checkpoint = checkpoint;
    this.conf = conf;
    this.from = from;
    this.to = to;
  }

  @Override
  public Iterator<StepRecord> apply(TaskEnv env, Iterator<Integer> records) {
    TrainingCheckpoint.Loaded start = TrainingCheckpoint.load(checkpoint, conf.value());
    if (start.step() != from) {
      // Another run wrote the same file meanwhile: continuing would mix two runs.
      throw new IllegalStateException("checkpoint " + checkpoint + " is at step " + start.step()
          + " but this stage starts at step " + from + ": is another run writing it?");
    }
    Map<String, Tensor> params = start.stateDict();
    AdamW optimizer = start.optimizer();
    Prior prior = new Prior(settings.endSizes(), settings.priorSeed());
    int threads = env.config().taskThreads();
    List<StepRecord> done = new ArrayList<>();
    for (long step = from; step < to; step++) {
      done.add(DataParallelStep.run(settings, prior, step, params, optimizer, env.comm(), threads));
    }
    if (env.rank() != 0) {
      return List.<StepRecord>of().iterator();
    }
    TrainingCheckpoint.save(checkpoint, params, settings.shape().numHeads(), optimizer,
        settings.metadata(), conf.value());
    return done.iterator();
  }
}
