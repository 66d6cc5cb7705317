package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Parallel;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnBackward;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * {@code mosaic bench train-step}: steps/s of one nanoTabPFN training step (forward + backward of
 * the mean test-row cross-entropy over a batch of tables, every state-dict gradient; no optimizer
 * update), in Java and then, in the same run, in PyTorch with {@code tools/bench/nanotabpfn_step.py}.
 */
final class TrainStepBenchmark {
  static final String PYTHON = "/usr/bin/python3";
  static final String SCRIPT = "tools/bench/nanotabpfn_step.py";

  /** The calibration shape and the batch of tables; every table has the same sizes. */
  record Setup(int embed, int heads, int layers, int mlp, int outputs, int batch, int rows,
      int train, int features, int classes, int threads, int steps) {
    String describe() {
      return "E " + embed + ", " + heads + " heads, " + layers + " layers, MLP " + mlp + ", "
          + outputs + " outputs; batch " + batch + " tables x " + rows + " rows (" + train
          + " train) x " + features + " features, " + classes + " classes; " + threads
          + " threads, " + steps + " timed steps after 1 warm-up";
    }

    List<String> pythonArgs() {
      return List.of("--embed", "" + embed, "--heads", "" + heads, "--layers", "" + layers,
          "--mlp", "" + mlp, "--outputs", "" + outputs, "--batch", "" + batch, "--rows",
          "" + rows, "--train", "" + train, "--features", "" + features, "--classes",
          "" + classes, "--threads", "" + threads, "--steps", "" + steps, "--warmup", "1");
    }
  }

  static final String USAGE = String.join("\n",
      "usage: mosaic bench train-step [--embed 64] [--heads 4] [--layers 3] [--mlp 128]",
      "                               [--outputs 10] [--batch 8] [--rows 300] [--train 200]",
      "                               [--features 20] [--classes 10] [--threads 2] [--steps 3]",
      "                               [--no-pytorch]",
      "  One nanoTabPFN training step (forward + backward, no optimizer) on a batch of random",
      "  tables: Java's steps/s, then PyTorch's (" + PYTHON + " " + SCRIPT + ") and the ratio.");

  private TrainStepBenchmark() {}

  /** {@code bench train-step} with its flags. */
  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("bench train-step", args, java.util.Set.of("embed", "heads", "layers",
        "mlp", "outputs", "batch", "rows", "train", "features", "classes", "threads", "steps"),
        java.util.Set.of("no-pytorch"));
    Setup s = new Setup(f.positive("embed", 64), f.positive("heads", 4), f.positive("layers", 3),
        f.positive("mlp", 128), f.positive("outputs", 10), f.positive("batch", 8),
        f.positive("rows", 300), f.positive("train", 200), f.positive("features", 20),
        f.positive("classes", 10), f.positive("threads", 2), f.positive("steps", 3));
    if (s.train() >= s.rows() || s.classes() > s.outputs()) {
      throw new UserError("bench train-step needs --train below --rows and --classes at most"
          + " --outputs, got train " + s.train() + ", rows " + s.rows() + ", classes "
          + s.classes() + ", outputs " + s.outputs());
    }
    try {
      return run(s, !f.has("no-pytorch"), out);
    } catch (UserError e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException("bench train-step failed: " + e, e);
    }
  }

  static int run(Setup s, boolean withPyTorch, PrintStream out) throws Exception {
    out.println("train step: " + s.describe());
    double java = javaStepsPerSecond(s, out);
    out.printf("java    steps/s %.4f%n", java);
    if (!withPyTorch) {
      return 0;
    }
    double torch = pytorchStepsPerSecond(s, out);
    out.printf("java / pytorch = %.2f%n", java / torch);
    return 0;
  }

  static double javaStepsPerSecond(Setup s, PrintStream out) {
    NanoTabPfnShape shape = new NanoTabPfnShape(s.embed(), s.heads(), s.layers(), s.mlp(),
        s.outputs());
    Random rnd = new Random(5);
    Tensor[] x = new Tensor[s.batch()];
    float[][] yTrain = new float[s.batch()][];
    int[][] yTest = new int[s.batch()][];
    for (int b = 0; b < s.batch(); b++) {
      float[] v = new float[s.rows() * s.features()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) rnd.nextGaussian();
      }
      x[b] = Tensor.of(v, s.rows(), s.features());
      yTrain[b] = new float[s.train()];
      for (int i = 0; i < s.train(); i++) {
        yTrain[b][i] = rnd.nextInt(s.classes());
      }
      yTest[b] = new int[s.rows() - s.train()];
      for (int i = 0; i < yTest[b].length; i++) {
        yTest[b][i] = rnd.nextInt(s.classes());
      }
    }
    // Data parallel over tables: one model replica per thread (the weights are shared, read
    // only), each replica single-threaded, so both cores stay busy through the serial small ops.
    int replicas = Math.min(s.threads(), s.batch());
    java.util.Map<String, Tensor> weights = NanoTabPfnInit.seeded(shape, 5);
    List<NanoTabPfnModel> models = new ArrayList<>();
    List<NanoTabPfnBackward> backwards = new ArrayList<>();
    try (Parallel workers = new Parallel(replicas, "mosaic-train-step")) {
      for (int i = 0; i < replicas; i++) {
        models.add(NanoTabPfnModel.fromStateDict("seeded", weights, s.heads(), null, 1));
        backwards.add(new NanoTabPfnBackward(models.get(i), 1));
      }
      double loss = step(backwards, workers, x, yTrain, yTest); // warm-up: JIT
      long t0 = System.nanoTime();
      for (int i = 0; i < s.steps(); i++) {
        loss = step(backwards, workers, x, yTrain, yTest);
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      out.printf("java    %d steps in %.2f s, loss %.4f%n", s.steps(), seconds, loss);
      return s.steps() / seconds;
    } finally {
      backwards.forEach(NanoTabPfnBackward::close);
      models.forEach(NanoTabPfnModel::close);
    }
  }

  /**
   * One step: every table's loss and gradients, worker w taking tables w, w + workers, ...; the
   * mean over the batch (PyTorch's mean) is summed in table order, so it does not depend on the
   * thread count.
   */
  private static double step(List<NanoTabPfnBackward> backwards, Parallel workers, Tensor[] x,
      float[][] yTrain, int[][] yTest) {
    int n = x.length;
    NanoTabPfnBackward.Result[] results = new NanoTabPfnBackward.Result[n];
    int replicas = backwards.size();
    workers.forEach(replicas, w -> {
      for (int b = w; b < n; b += replicas) {
        results[b] = backwards.get(w).lossAndGradients(x[b], yTrain[b], yTest[b]);
      }
    });
    double loss = 0;
    float[][] sum = null;
    for (NanoTabPfnBackward.Result r : results) {
      loss += r.loss() / n;
      List<Tensor> grads = new ArrayList<>(r.gradients().values());
      if (sum == null) {
        sum = new float[grads.size()][];
        for (int i = 0; i < sum.length; i++) {
          sum[i] = new float[grads.get(i).size()];
        }
      }
      for (int i = 0; i < sum.length; i++) {
        float[] g = grads.get(i).data();
        for (int j = 0; j < g.length; j++) {
          sum[i][j] += g[j] / n;
        }
      }
    }
    return loss;
  }

  static double pytorchStepsPerSecond(Setup s, PrintStream out) throws Exception {
    if (!new File(PYTHON).canExecute() || !new File(SCRIPT).isFile()) {
      throw new UserError("bench train-step compares with PyTorch through " + PYTHON + " "
          + SCRIPT + " (run from the repository root), not found; use --no-pytorch");
    }
    List<String> cmd = new ArrayList<>(List.of(PYTHON, SCRIPT));
    cmd.addAll(s.pythonArgs());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String result = null;
    try (BufferedReader r = new BufferedReader(
        new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        out.println(line);
        if (line.startsWith("pytorch steps/s ")) {
          result = line.split(" ")[2];
        }
      }
    }
    if (!p.waitFor(1, TimeUnit.HOURS) || p.exitValue() != 0 || result == null) {
      p.destroyForcibly();
      throw new UserError("the PyTorch step benchmark failed: " + String.join(" ", cmd));
    }
    return Double.parseDouble(result);
  }
}
