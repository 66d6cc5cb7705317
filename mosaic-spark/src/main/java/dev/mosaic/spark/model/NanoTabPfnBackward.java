package dev.mosaic.spark.model;

import static dev.mosaic.spark.model.NanoTabPfnShape.DECODER;
import static dev.mosaic.spark.model.NanoTabPfnShape.FEATURE_ENCODER;
import static dev.mosaic.spark.model.NanoTabPfnShape.TARGET_ENCODER;

import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.grad.GeluBackward;
import dev.mosaic.kernels.grad.Gradients;
import dev.mosaic.kernels.grad.LinearBackward;
import dev.mosaic.kernels.grad.SoftmaxCrossEntropy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * nanoTabPFN's training step without the optimizer: the forward of {@link NanoTabPfnModel} with
 * its activations kept, the loss nanoTabPFN trains with (mean softmax cross-entropy of the test
 * rows' logits over all outputs) and the gradient of that loss for every tensor of the
 * {@code state_dict}, under the same names ({@link NanoTabPfnShape#tensorShapes}, in that order).
 * The inputs x and labels get no gradient (they are data).
 *
 * <p>Sharded over rows (the row attention running through a ring strategy), each rank calls
 * {@link #shard} for its rows: its loss and gradients are its shard's contribution to the whole
 * table's, and the caller sums them over the ranks.
 */
public final class NanoTabPfnBackward implements AutoCloseable {
  private final NanoTabPfnModel model;
  private final Map<String, Tensor> weights;
  private final List<NanoTabPfnBlockBackward> blocks = new ArrayList<>();
  private final Parallel parallel;

  public NanoTabPfnBackward(NanoTabPfnModel model, int threads) {
    this.model = model;
    this.weights = model.stateDict();
    for (int i = 0; i < model.blocks().size(); i++) {
      blocks.add(new NanoTabPfnBlockBackward(model.blocks().get(i), NanoTabPfnShape.block(i),
          weights));
    }
    parallel = new Parallel(threads, "mosaic-nanotabpfn-backward");
  }

  /**
   * @param loss the mean cross-entropy (a shard's share of it: its rows' sum over all test rows)
   * @param logits this table's or shard's test rows, {@code (tests, outputs)}
   * @param gradients d loss / d tensor for every tensor of the state dict, by name
   */
  public record Result(double loss, Tensor logits, Map<String, Tensor> gradients) {}

  /**
   * The whole table in this JVM: {@code x}'s first {@code yTrain.length} rows are train rows, the
   * rest test rows labelled {@code yTest} (class ids below the model's outputs).
   */
  public Result lossAndGradients(Tensor x, float[] yTrain, int[] yTest) {
    return shard(x, yTrain, 0, yTrain.length, TableStats.ofTrainRows(x, yTrain), yTest,
        yTest.length);
  }

  /**
   * One shard of rows {@code rowOffset ..} of a table whose first {@code nTrain} rows train (see
   * {@link NanoTabPfnModel#shardLogits}); {@code yTest} labels the shard's test rows and
   * {@code testRows} counts the whole table's, the denominator of the mean.
   */
  public Result shard(Tensor xShard, float[] yShard, long rowOffset, long nTrain,
      TableStats stats, int[] yTest, long testRows) {
    int rows = xShard.dim(0);
    int firstTest = (int) Math.max(0, Math.min(rows, nTrain - rowOffset));
    if (yTest.length != rows - firstTest) {
      throw new IllegalArgumentException("yTest must label the shard's " + (rows - firstTest)
          + " test rows, got " + yTest.length + " labels");
    }
    if (testRows < yTest.length) {
      throw new IllegalArgumentException("testRows must count at least this shard's "
          + yTest.length + " test rows, got " + testRows);
    }
    // Forward, keeping activations.
    Tensor table = model.embed(xShard, yShard, rowOffset, nTrain, stats);
    List<NanoTabPfnBlockBackward.Saved> saved = new ArrayList<>();
    for (NanoTabPfnBlockBackward b : blocks) {
      NanoTabPfnBlockBackward.Saved s = b.forward(table, nTrain, parallel);
      saved.add(s);
      table = s.output();
    }
    int e = model.shape().embedDim();
    int cols = table.dim(1);
    int tests = rows - firstTest;
    float[] cells = new float[tests * e];
    for (int r = 0; r < tests; r++) {
      System.arraycopy(table.data(), ((firstTest + r) * cols + cols - 1) * e, cells, r * e, e);
    }
    Linear dec1 = linear(DECODER + "linear1.");
    Linear dec2 = linear(DECODER + "linear2.");
    float[] hidden = dec1.forward(cells, tests, parallel);
    float[] gelu = hidden.clone();
    ExactGelu.applyInPlace(gelu);
    int outputs = model.shape().outputs();
    float[] logits = dec2.forward(gelu, tests, parallel);

    // Loss: the mean over the table's test rows; this shard's rows are tests/testRows of it.
    Map<String, Tensor> grads = new HashMap<>();
    double loss = 0;
    float[] dTable = new float[table.size()];
    if (tests > 0) {
      SoftmaxCrossEntropy.Result ce = SoftmaxCrossEntropy.apply(logits, outputs, yTest);
      double share = (double) tests / testRows;
      loss = ce.loss() * share;
      float[] dLogits = ce.dlogits();
      for (int i = 0; i < dLogits.length; i++) {
        dLogits[i] = (float) (dLogits[i] * share);
      }
      Gradients d2 = LinearBackward.backward(gelu, tests, weight(DECODER + "linear2."), true,
          dLogits, parallel);
      float[] dh = GeluBackward.backward(hidden, d2.input());
      Gradients d1 = LinearBackward.backward(cells, tests, weight(DECODER + "linear1."), true, dh,
          parallel);
      put(grads, d1, DECODER + "linear1.");
      put(grads, d2, DECODER + "linear2.");
      for (int r = 0; r < tests; r++) {
        System.arraycopy(d1.input(), r * e, dTable, ((firstTest + r) * cols + cols - 1) * e, e);
      }
    } else {
      zeros(grads, DECODER + "linear1.");
      zeros(grads, DECODER + "linear2.");
    }

    // Blocks in reverse, then the encoders.
    for (int i = blocks.size() - 1; i >= 0; i--) {
      dTable = blocks.get(i).backward(saved.get(i), dTable, grads, parallel);
    }
    encoderGradients(xShard, yShard, rowOffset, nTrain, stats, dTable, cols, grads);
    Map<String, Tensor> ordered = new LinkedHashMap<>();
    for (String name : model.shape().tensorShapes().keySet()) {
      ordered.put(name, grads.get(name));
    }
    return new Result(loss, Tensor.of(logits, tests, outputs), ordered);
  }

  /**
   * The two {@code Linear(1, E)} encoders: the feature cells' input is the standardised value,
   * the target column's the label (train rows) or the train labels' mean (test rows).
   */
  private void encoderGradients(Tensor xShard, float[] yShard, long rowOffset, long nTrain,
      TableStats stats, float[] dTable, int cols, Map<String, Tensor> grads) {
    int rows = xShard.dim(0);
    int features = cols - 1;
    int e = model.shape().embedDim();
    float[] dCells = new float[rows * features * e];
    float[] dTarget = new float[rows * e];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(dTable, r * cols * e, dCells, r * features * e, features * e);
      System.arraycopy(dTable, (r * cols + features) * e, dTarget, r * e, e);
    }
    float[] standardized = FeatureStandardizer.standardize(xShard, stats).data();
    put(grads, LinearBackward.backward(standardized, rows * features, weight(FEATURE_ENCODER),
        true, dCells), FEATURE_ENCODER);
    float[] targetValues = new float[rows];
    for (int r = 0; r < rows; r++) {
      targetValues[r] = rowOffset + r < nTrain ? yShard[r] : stats.labelMean();
    }
    put(grads, LinearBackward.backward(targetValues, rows, weight(TARGET_ENCODER), true,
        dTarget), TARGET_ENCODER);
  }

  private static void put(Map<String, Tensor> grads, Gradients g, String prefix) {
    g.parameters().forEach((name, t) -> grads.put(prefix + name, t));
  }

  private void zeros(Map<String, Tensor> grads, String prefix) {
    for (String p : new String[] {"weight", "bias"}) {
      grads.put(prefix + p, Tensor.zeros(weights.get(prefix + p).shape()));
    }
  }

  private Tensor weight(String prefix) {
    return weights.get(prefix + "weight");
  }

  private Linear linear(String prefix) {
    return new Linear(weights.get(prefix + "weight"), weights.get(prefix + "bias"));
  }

  @Override
  public void close() {
    parallel.close();
  }
}
