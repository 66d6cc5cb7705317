package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.jobs.NanoTabPfnJob;
import dev.mosaic.spark.jobs.ParquetOutput;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedInputCheck;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.strategy.Backends;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code mosaic predict}: a nanoTabPFN checkpoint ({@link NanoTabPfnCheckpoint}) applied to a
 * table whose first rows are the training rows. Two forms: tensors in a safetensors file (the
 * contract other tools call), or a train and a test table (Parquet or CSV) with a label column.
 */
final class PredictCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic predict --model MODEL.safetensors --data DATA.safetensors --output OUT.safetensors",
      "                      [--num-heads H] [--backend local|ring|auto] [--sp P] [--master URL]",
      "                      [--threads N]",
      "       mosaic predict --model MODEL.safetensors --train T.parquet|csv --test S.parquet|csv",
      "                      --label COL --output P.parquet [same options]",
      "  Runs a nanoTabPFN checkpoint (PyTorch state_dict as safetensors; heads from its",
      "  __metadata__ num_attention_heads, or --num-heads, which wins).",
      "  Tensor form: DATA holds 'x' F32 [rows, features], train rows first, and 'y' F32 [nTrain];",
      "  OUT gets 'logits' F32 [rows - nTrain, outputs] and 'probabilities' F32",
      "  [rows - nTrain, max(y) + 1] (left out when y holds regression targets, not class ids).",
      "  Table form: every column but --label is a numeric feature, same names and order in both",
      "  tables (the test table may lack the label); CSV needs a header. P gets the test rows plus",
      "  'prediction' (int) and 'probabilities' (array<float>).",
      "  --backend local runs in this JVM; ring runs the row attention as one Spark barrier stage",
      "  of --sp P tasks (default 2) on --master (default local[max(cores, P)]); auto (default)",
      "  is local unless the model's working set, about 4 bytes x rows x (features + 1) x",
      "  (8 E + mlpHidden), exceeds a quarter of this JVM's heap (MOSAIC_HEAP).");

  static final String AUTO_RULE = "a quarter of this JVM's heap";

  private static final Set<String> VALUES = Set.of("model", "data", "output", "train", "test",
      "label", "num-heads", "backend", "sp", "master", "threads");
  private static final List<String> BACKENDS = List.of(Backends.LOCAL, Backends.RING,
      Backends.AUTO);

  private PredictCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("predict", args, VALUES, Set.of());
    if (!f.positional().isEmpty()) {
      throw new UserError("unexpected argument '" + f.positional().get(0) + "'");
    }
    boolean tableForm = f.has("train") || f.has("test") || f.has("label");
    if (tableForm && f.has("data")) {
      throw new UserError("give either --data (tensor form) or --train, --test and --label (table"
          + " form), not both");
    }
    if (!tableForm && !f.has("data")) {
      throw new UserError("'predict' needs --data, or --train, --test and --label");
    }
    Path modelFile = AttentionCommand.existing(f.required("model"), "--model");
    String output = f.required("output");
    String backend = f.string("backend", Backends.AUTO);
    if (!BACKENDS.contains(backend)) {
      throw new UserError("unknown backend '" + backend + "' for predict; expected one of "
          + String.join(", ", BACKENDS));
    }
    if (backend.equals(Backends.LOCAL) && f.has("sp")) {
      throw new UserError("--sp needs --backend ring or auto");
    }
    if (backend.equals(Backends.LOCAL) && !tableForm && f.has("master")) {
      throw new UserError("--master needs --backend ring or auto, or the table form");
    }
    Integer heads = f.has("num-heads") ? f.positive("num-heads", 1) : null;
    int threads = f.positive("threads", Runtime.getRuntime().availableProcessors());
    int sp = f.positive("sp", 2);
    Map<String, String> conf = new HashMap<>();
    if (f.has("threads")) {
      conf.put(MosaicConfig.TASK_THREADS, Integer.toString(threads));
    }
    String master = f.string("master",
        SparkSessions.defaultMaster(backend.equals(Backends.LOCAL) ? 1 : sp));
    try (NanoTabPfnModel model = NanoTabPfnCheckpoint.load(modelFile, heads, threads);
        LazySpark spark = new LazySpark(master, "mosaic-predict", conf)) {
      return tableForm
          ? tables(f, model, backend, sp, spark, output, out)
          : tensors(f, model, backend, sp, spark, Path.of(output), out);
    }
  }

  /** DATA's x and y in, OUT's logits and probabilities out. */
  private static int tensors(Flags f, NanoTabPfnModel model, String backend, int sp,
      LazySpark spark, Path output, PrintStream out) {
    Path dataFile = AttentionCommand.existing(f.required("data"), "--data");
    Map<String, Tensor> data = Safetensors.read(dataFile);
    Tensor x = tensor(data, dataFile, "x", 2, "[rows, features]");
    float[] y = tensor(data, dataFile, "y", 1, "[nTrain]").data();
    int rows = x.dim(0);
    if (x.dim(1) < 1) {
      throw new UserError("tensor 'x' in " + dataFile + " has no feature columns: expected"
          + " [rows, features] with features >= 1, got " + Arrays.toString(x.shape()));
    }
    if (y.length == 0) {
      throw new UserError("tensor 'y' in " + dataFile + " is empty: expected one label per train"
          + " row (an empty train set)");
    }
    if (y.length >= rows) {
      throw new UserError("tensor 'y' in " + dataFile + " has " + y.length + " labels and 'x' "
          + rows + " rows: expected fewer labels than rows (the rows after the train rows are"
          + " the test rows; there are none)");
    }
    ShardedInputCheck.requireFinite("x", x);
    ShardedInputCheck.requireFinite("y", Tensor.of(y, y.length));
    long start = System.nanoTime();
    String ran = chooseBackend(backend, model.shape(), x, out);
    Tensor logits = logits(ran, model, x, y, sp, spark);
    Map<String, Tensor> result = new LinkedHashMap<>();
    result.put("logits", logits);
    boolean classIds = isClassIds(y);
    if (classIds) {
      result.put("probabilities", model.probabilities(logits, y));
    }
    double secs = (System.nanoTime() - start) / 1e9;
    Safetensors.write(output, result); // atomic: a temporary file moved into place
    out.printf("wrote logits %s%s to %s (%d train + %d test rows, %s, %.3f s)%n",
        Arrays.toString(logits.shape()), classIds ? " and probabilities "
            + Arrays.toString(result.get("probabilities").shape()) : "", output, y.length,
        rows - y.length, ran, secs);
    if (!classIds) {
      out.println("y holds regression targets, not class ids: no probabilities written");
    }
    return 0;
  }

  /** The train and test tables in, the test rows with their predictions out as Parquet. */
  private static int tables(Flags f, NanoTabPfnModel model, String backend, int sp,
      LazySpark spark, String output, PrintStream out) {
    String label = f.required("label");
    PredictTables.checkPaths(f.required("train"), f.required("test")); // before Spark starts
    PredictTables.Input in = PredictTables.load(spark.get(), f.required("train"),
        f.required("test"), label);
    long start = System.nanoTime();
    String ran = chooseBackend(backend, model.shape(), in.x(), out);
    Tensor logits = logits(ran, model, in.x(), in.yTrain(), sp, spark);
    Tensor probabilities = model.probabilities(logits, in.yTrain());
    double secs = (System.nanoTime() - start) / 1e9;
    ParquetOutput.write(PredictTables.output(spark.get(), in, probabilities), output);
    out.printf("wrote %d predictions (%d classes) to %s (%d train rows, %s, %.3f s)%n",
        in.testRows().size(), probabilities.dim(1), output, in.yTrain().length, ran, secs);
    return 0;
  }

  /** The logits of the test rows on the chosen backend: the one place that picks how to run. */
  private static Tensor logits(String backend, NanoTabPfnModel model, Tensor x, float[] yTrain,
      int sp, LazySpark spark) {
    if (backend.equals(Backends.LOCAL)) {
      return model.logits(x, yTrain);
    }
    ShardedInputCheck.requireShardable(x.dim(0), "the rows", sp, "--sp " + sp);
    return NanoTabPfnJob.testLogits(MosaicContext.init(spark.get(), sp), model.stateDict(),
        model.shape().numHeads(), x, yTrain);
  }

  /**
   * {@code local} or {@code ring}: as asked, or for {@code auto} local while the working set
   * ({@link #workingSetBytes}) fits in {@value #AUTO_RULE}, else ring.
   */
  static String chooseBackend(String requested, NanoTabPfnShape shape, Tensor x,
      PrintStream out) {
    if (!requested.equals(Backends.AUTO)) {
      return requested;
    }
    long need = workingSetBytes(shape, x.dim(0), x.dim(1));
    String chosen = autoBackend(need, Runtime.getRuntime().maxMemory());
    if (chosen.equals(Backends.RING)) {
      out.printf("--backend auto: ring, the rows need about %d MiB, more than %s (%d MiB)%n",
          need >> 20, AUTO_RULE, Runtime.getRuntime().maxMemory() >> 22);
    }
    return chosen;
  }

  /** The auto rule on its own: local while {@code need} is at most a quarter of {@code heap}. */
  static String autoBackend(long needBytes, long heapBytes) {
    return needBytes <= heapBytes / 4 ? Backends.LOCAL : Backends.RING;
  }

  /**
   * About what the local forward holds at once: the {@code (rows, features + 1, E)} table, its
   * Q/K/V and attention output, the residual copies, and the MLP's hidden layer.
   */
  static long workingSetBytes(NanoTabPfnShape shape, long rows, long features) {
    return 4L * rows * (features + 1) * (8L * shape.embedDim() + shape.mlpHidden());
  }

  /** Labels that are all non-negative integers; anything else is a regression target. */
  static boolean isClassIds(float[] y) {
    for (float v : y) {
      if (v < 0 || v != Math.rint(v)) {
        return false;
      }
    }
    return true;
  }

  private static Tensor tensor(Map<String, Tensor> data, Path file, String name, int rank,
      String expected) {
    Tensor t = data.get(name);
    if (t == null) {
      throw new UserError("--data " + file + " has no tensor '" + name + "': expected " + expected
          + " (it holds " + new java.util.TreeSet<>(data.keySet()) + ")");
    }
    if (t.rank() != rank) {
      throw new UserError("tensor '" + name + "' in " + file + " must be " + expected + ", got "
          + Arrays.toString(t.shape()));
    }
    return t;
  }
}
