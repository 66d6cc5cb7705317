package dev.mosaic.spark.model;

import static dev.mosaic.spark.model.NanoTabPfnShape.CELL_ATTENTION;
import static dev.mosaic.spark.model.NanoTabPfnShape.DECODER;
import static dev.mosaic.spark.model.NanoTabPfnShape.FEATURE_ENCODER;
import static dev.mosaic.spark.model.NanoTabPfnShape.ROW_ATTENTION;
import static dev.mosaic.spark.model.NanoTabPfnShape.TARGET_ENCODER;

import dev.mosaic.kernels.Linear;
import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.strategy.Strategy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What nanoTabPFN's {@code NanoTabPFNModel.forward(x, y_train, n_train)} computes, with PyTorch's
 * numerics and weights from a checkpoint ({@link NanoTabPfnCheckpoint}):
 *
 * <ol>
 *   <li>features standardised on the train rows ({@link FeatureStandardizer}), each cell through
 *       {@code Linear(1, E)}; the target column is the train labels and, for test rows, the mean
 *       train label, through its own {@code Linear(1, E)}: a {@code (rows, features + 1, E)} table;
 *   <li>L post-norm blocks: attention across the cells of a row → + residual → norm1; attention
 *       across rows where every row sees only the train rows → + residual → norm2;
 *       {@code linear2(GELU(linear1(t)))} (exact GELU) → + residual → norm3;
 *   <li>the decoder {@code linear2(GELU(linear1(t)))} on the target cell of each test row.
 * </ol>
 *
 * <p>The row attention is a {@link MultiAxisAttention} with key limit {@code nTrain}, so it can
 * run through a Spark ring strategy: {@link #shardLogits} runs one shard of rows, with the
 * standardisation and the label mean ({@link TableStats}) computed from all train rows first.
 */
public final class NanoTabPfnModel implements AutoCloseable {
  private final NanoTabPfnShape shape;
  private final Map<String, Tensor> stateDict;
  private final Linear featureEncoder;
  private final Linear targetEncoder;
  private final List<NanoTabPfnBlock> blocks = new ArrayList<>();
  private final Linear decoder1;
  private final Linear decoder2;
  private final Parallel parallel;

  /**
   * @param shape checked against {@code tensors} by {@link NanoTabPfnCheckpoint#check}
   * @param rowStrategy the row attention's strategy (not closed here); null for local
   */
  NanoTabPfnModel(NanoTabPfnShape shape, Map<String, Tensor> tensors, Strategy rowStrategy,
      int threads) {
    this.shape = shape;
    this.stateDict = NanoTabPfnCheckpoint.ordered(shape, tensors);
    int e = shape.embedDim();
    int h = shape.numHeads();
    featureEncoder = linear(FEATURE_ENCODER);
    targetEncoder = linear(TARGET_ENCODER);
    for (int i = 0; i < shape.layers(); i++) {
      String b = NanoTabPfnShape.block(i);
      MultiAxisAttention cells = MultiAxisAttention.builder(e, h, 1)
          .weights(tensors, b + CELL_ATTENTION).threads(threads).build();
      MultiAxisAttention.Builder rows = MultiAxisAttention.builder(e, h, 0)
          .weights(tensors, b + ROW_ATTENTION).threads(threads);
      if (rowStrategy != null) {
        rows.strategy(rowStrategy);
      }
      blocks.add(new NanoTabPfnBlock(cells, rows.build(), linear(b + "linear1."), linear(b + "linear2."),
          norm(b + "norm1."), norm(b + "norm2."), norm(b + "norm3.")));
    }
    decoder1 = linear(DECODER + "linear1.");
    decoder2 = linear(DECODER + "linear2.");
    parallel = new Parallel(threads, "mosaic-nanotabpfn");
  }

  /** A model from a {@code state_dict} already in memory; {@code source} names it in errors. */
  public static NanoTabPfnModel fromStateDict(String source, Map<String, Tensor> tensors,
      int numHeads, Strategy rowStrategy, int threads) {
    return new NanoTabPfnModel(NanoTabPfnCheckpoint.check(source, tensors, numHeads), tensors,
        rowStrategy, threads);
  }

  private Linear linear(String prefix) {
    return new Linear(stateDict.get(prefix + "weight"), stateDict.get(prefix + "bias"));
  }

  private LayerNorm norm(String prefix) {
    return new LayerNorm(stateDict.get(prefix + "weight").data(),
        stateDict.get(prefix + "bias").data());
  }

  public NanoTabPfnShape shape() {
    return shape;
  }

  /** The weights under nanoTabPFN's names, in PyTorch's order (shared, do not modify). */
  public Map<String, Tensor> stateDict() {
    return java.util.Collections.unmodifiableMap(stateDict);
  }

  /** The L transformer blocks, in order (owned by the model). */
  public List<NanoTabPfnBlock> blocks() {
    return java.util.Collections.unmodifiableList(blocks);
  }

  /**
   * The decoder's logits {@code (rows − nTrain, outputs)} for the test rows.
   *
   * @param x {@code (rows, features)}, the train rows first
   * @param yTrain the train rows' labels (class ids, or regression targets); its length is nTrain
   */
  public Tensor logits(Tensor x, float[] yTrain) {
    TableStats stats = TableStats.ofTrainRows(x, yTrain);
    return shardLogits(x, yTrain, 0, yTrain.length, stats);
  }

  /**
   * The logits of the test rows of one shard of a table: the shard's rows are the table's rows
   * {@code rowOffset .. rowOffset + xShard.rows − 1}, the table's first {@code nTrain} rows are
   * its train rows, and {@code stats} come from all of them. The row attention runs through the
   * model's row strategy (a ring over the tasks holding the other shards, or local when this
   * shard is the whole table).
   *
   * @param yShard labels of the shard's rows; read only for the train rows (it may be shorter,
   *     holding just those)
   * @return {@code (test rows of this shard, outputs)}; the test rows are the shard's last rows
   */
  public Tensor shardLogits(Tensor xShard, float[] yShard, long rowOffset, long nTrain,
      TableStats stats) {
    Tensor table = embed(xShard, yShard, rowOffset, nTrain, stats);
    for (NanoTabPfnBlock b : blocks) {
      table = b.forward(table, nTrain, parallel);
    }
    int firstTest = (int) Math.max(0, Math.min(xShard.dim(0), nTrain - rowOffset));
    return decode(table, firstTest);
  }

  /**
   * The encoders: a {@code (rows, features + 1, E)} table from standardised features and the
   * target column (train rows: their label; test rows: the train labels' mean).
   */
  public Tensor embed(Tensor xShard, float[] yShard, long rowOffset, long nTrain,
      TableStats stats) {
    int rows = xShard.dim(0);
    int features = stats.features();
    int cols = features + 1;
    int e = shape.embedDim();
    float[] cells = featureEncoder.forward(
        FeatureStandardizer.standardize(xShard, stats).data(), rows * features, parallel);
    float[] targetValues = new float[rows];
    for (int r = 0; r < rows; r++) {
      boolean train = rowOffset + r < nTrain;
      if (train && r >= yShard.length) {
        throw new IllegalArgumentException("yShard has " + yShard.length + " labels, but row "
            + (rowOffset + r) + " is a train row (nTrain " + nTrain + ")");
      }
      targetValues[r] = train ? yShard[r] : stats.labelMean();
    }
    float[] target = targetEncoder.forward(targetValues, rows, parallel);
    float[] t = new float[rows * cols * e];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(cells, r * features * e, t, r * cols * e, features * e);
      System.arraycopy(target, r * e, t, (r * cols + features) * e, e);
    }
    return Tensor.of(t, rows, cols, e);
  }

  /** The decoder on the target cell (the last column) of rows {@code firstRow..} of the table. */
  public Tensor decode(Tensor table, int firstRow) {
    int rows = table.dim(0);
    int cols = table.dim(1);
    int e = shape.embedDim();
    int n = rows - firstRow;
    float[] targetCells = new float[n * e];
    for (int r = 0; r < n; r++) {
      System.arraycopy(table.data(), ((firstRow + r) * cols + cols - 1) * e, targetCells, r * e,
          e);
    }
    return Tensor.of(NanoTabPfnBlock.mlp(decoder1, decoder2, targetCells, n, parallel), n,
        shape.outputs());
  }

  /**
   * Class probabilities {@code (tests, classes)}: the softmax over the first
   * {@code classes = max(yTrain) + 1} logits of each row.
   */
  public Tensor probabilities(Tensor logits, float[] yTrain) {
    int classes = classes(yTrain);
    int outputs = logits.dim(1);
    if (classes > outputs) {
      throw new IllegalArgumentException("y_train's largest class id is " + (classes - 1)
          + ": expected at most " + (outputs - 1) + " (the model has " + outputs + " outputs)");
    }
    int tests = logits.dim(0);
    float[] l = logits.data();
    float[] p = new float[tests * classes];
    for (int r = 0; r < tests; r++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int c = 0; c < classes; c++) {
        max = Math.max(max, l[r * outputs + c]);
      }
      double sum = 0;
      for (int c = 0; c < classes; c++) {
        sum += Math.exp(l[r * outputs + c] - max);
      }
      for (int c = 0; c < classes; c++) {
        p[r * classes + c] = (float) (Math.exp(l[r * outputs + c] - max) / sum);
      }
    }
    return Tensor.of(p, tests, classes);
  }

  /** {@code max(yTrain) + 1}; the labels must be class ids (non-negative integers). */
  public static int classes(float[] yTrain) {
    int max = -1;
    for (float y : yTrain) {
      if (y < 0 || y != Math.rint(y) || y > Integer.MAX_VALUE - 1) {
        throw new IllegalArgumentException(
            "y_train must hold class ids (non-negative integers) for probabilities, got " + y);
      }
      max = Math.max(max, (int) y);
    }
    if (max < 0) {
      throw new IllegalArgumentException("y_train is empty: expected at least one class id");
    }
    return max + 1;
  }

  @Override
  public void close() {
    for (NanoTabPfnBlock b : blocks) {
      b.close();
    }
    parallel.close();
  }
}
