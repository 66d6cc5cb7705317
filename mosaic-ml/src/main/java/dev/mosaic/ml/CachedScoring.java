package dev.mosaic.ml;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.CachedScorer;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.TrainRowCache;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * Scoring in ordinary tasks: each partition (of any DataFrame, a streaming micro-batch included)
 * builds the model from the broadcast weights once, and scores its rows in batches against the
 * broadcast {@link TrainRowCache}. Test rows do not see each other, so neither the partitioning
 * nor the batching changes a row's output. Each output row is the input row plus the predicted
 * class and the class probabilities.
 */
final class CachedScoring implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  /** Rows scored together: bounds a task's working memory, not the result. */
  static final int BATCH_ROWS = 1024;

  /** What the tasks need, broadcast once per fitted model. */
  record Bundle(LinkedHashMap<String, Tensor> stateDict, int numHeads, TrainRowCache cache)
      implements Serializable {}

  private final Broadcast<Bundle> bundle;
  private final FeatureColumn features;
  private final int threads;

  CachedScoring(Broadcast<Bundle> bundle, FeatureColumn features, int threads) {
    this.bundle = bundle;
    this.features = features;
    this.threads = threads;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    if (!input.hasNext()) {
      return input;
    }
    Bundle b = bundle.value();
    NanoTabPfnModel model = NanoTabPfnModel.fromStateDict("the fitted model", b.stateDict(),
        b.numHeads(), null, threads);
    CachedScorer scorer = new CachedScorer(model, b.cache(), threads);
    Runnable close = () -> {
      scorer.close();
      model.close();
    };
    TaskContext task = TaskContext.get();
    int partition = task == null ? 0 : task.partitionId();
    if (task != null) {
      org.apache.spark.util.TaskCompletionListener onEnd = ctx -> close.run();
      task.addTaskCompletionListener(onEnd);
    }
    return new Iterator<>() {
      private final List<Row> done = new ArrayList<>();
      private int next;
      private long seen;

      @Override
      public boolean hasNext() {
        if (next < done.size()) {
          return true;
        }
        if (!input.hasNext()) {
          return false;
        }
        scoreBatch();
        return true;
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return done.get(next++);
      }

      private void scoreBatch() {
        List<Row> rows = new ArrayList<>(BATCH_ROWS);
        while (rows.size() < BATCH_ROWS && input.hasNext()) {
          rows.add(input.next());
        }
        int f = b.cache().features();
        float[] x = new float[rows.size() * f];
        for (int i = 0; i < rows.size(); i++) {
          String name = "row " + (seen + i) + " of partition " + partition;
          float[] v = features.read(rows.get(i), name);
          if (v.length != f) {
            throw new IllegalArgumentException(features.describe() + " has " + v.length
                + " features in " + name + ", expected " + f + " (as the train rows)");
          }
          System.arraycopy(v, 0, x, i * f, f);
        }
        seen += rows.size();
        Tensor logits = scorer.logits(Tensor.of(x, rows.size(), f));
        Tensor probs = scorer.probabilities(logits);
        int classes = probs.dim(1);
        done.clear();
        next = 0;
        for (int i = 0; i < rows.size(); i++) {
          Row in = rows.get(i);
          Object[] values = new Object[in.length() + 2];
          for (int c = 0; c < in.length(); c++) {
            values[c] = in.get(c);
          }
          float[] p = new float[classes];
          System.arraycopy(probs.data(), i * classes, p, 0, classes);
          values[in.length()] = argMax(p);
          values[in.length() + 1] = p;
          done.add(RowFactory.create(values));
        }
      }
    };
  }

  static int argMax(float[] p) {
    int best = 0;
    for (int c = 1; c < p.length; c++) {
      if (p[c] > p[best]) {
        best = c;
      }
    }
    return best;
  }
}
