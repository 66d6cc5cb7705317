package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.layers.MultiAxisAttention2D;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedAttention;
import dev.mosaic.spark.runner.ShardedAttentionBackward;
import dev.mosaic.spark.runner.ShardedInputCheck;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.runner.StageProgress;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.StrategySpec;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/**
 * {@code mosaic attention}: reads tensor {@code x} from a tensor file (safetensors, {@code .npy}
 * or {@code .npz}, see {@link TensorFiles}), applies {@link MultiAxisAttention} with weights from
 * another, writes tensor {@code y} in the format of the output's extension. The contract other
 * tools call.
 */
final class AttentionCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic attention --input X.safetensors --weights W.safetensors --output Y.safetensors",
      "                        --num-heads H [--num-kv-heads G] --axis A [--causal]",
      "                        [--key-limit N]",
      "                        [--backend local|ring|mesh2d|ulysses|composed|hierarchical|auto]",
      "                        [--sp P] [--mesh RxC] [--intra-node-size N] [--intra ring|ulysses]",
      "                        [--inter ring|mesh2d] [--axis2 B] [--master URL] [--threads N]",
      "                        [--weights-prefix P] [--allow-nonfinite] [--kv-input KV]",
      "                        [--grad-output G.safetensors --grads-output GR.safetensors]",
      "                        " + DeviceFlags.USAGE,
      "  Reads tensor 'x' (float32, rank >= 2, embed last), attends along axis A (negative counts",
      "  from the end), writes tensor 'y' of the same shape. Weights use PyTorch",
      "  nn.MultiheadAttention names: in_proj_weight, in_proj_bias, out_proj.weight,",
      "  out_proj.bias; or Hugging Face-style q_proj.weight [E,E], k_proj.weight [G*d,E],",
      "  v_proj.weight [G*d,E], o_proj.weight [E,E], optional q_proj.bias .. o_proj.bias (d = E/H).",
      "  --num-kv-heads G: grouped-query attention, G K/V heads (dividing H) shared by the H query",
      "  heads, query head i reading K/V head floor(i*G/H); G = 1 is multi-query attention. It",
      "  needs the q_proj/k_proj/v_proj/o_proj names (without it they mean G from k_proj.weight).",
      "  Backends: local, ring (sends only the G K/V heads), hierarchical ring/ring, ulysses (G",
      "  dividing or divisible by the task count); CPU only.",
      "  Files by extension: .npy (one NumPy array: x or y), .npz (NumPy arrays by name), else",
      "  safetensors; float64 is read as float32, the output is written as float32.",
      "  A distributed backend shards the axis over --sp P Spark barrier tasks (default 2; at most",
      "  the axis length), on --master (default local[max(cores, P)]; --threads is then per task).",
      "  --mesh: mesh2d grid rows x cols, or composed head-ways x sequence-ways; it sets P = R*C.",
      "  --axis2: attend over axes A and B at once (A outer). NaN or infinite values in x or the",
      "  weights are an error unless --allow-nonfinite.",
      "  --device auto computes on the GPU Spark assigned to each task (or CUDA_VISIBLE_DEVICES),",
      "  else the CPU; --gpu-dtype stores Q/K/V on the GPU as fp16/bf16 (fp32 arithmetic);",
      "  --comm auto uses NCCL between tasks that each own a GPU, else TCP.",
      "  --grad-output G --grads-output GR: also the backward. G holds tensor 'dy' (y's shape);",
      "  GR gets dx, in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias (or the",
      "  q_proj/k_proj/v_proj/o_proj names of the weights given): the gradients of sum(y*dy).",
      "  Backends whose strategy has no backward refuse it in one line.",
      CrossAttentionCommand.USAGE);

  private static final Set<String> VALUES = Set.of("input", "weights", "output", "num-heads",
      "num-kv-heads",
      "axis", "backend", "threads", "weights-prefix", "key-limit", "sp", "master", "mesh",
      "intra-node-size", "intra", "inter", "axis2", "device", "gpu-dtype", "comm", "grad-output",
      "grads-output", "kv-input");
  private static final Set<String> SWITCHES = Set.of("causal", "allow-nonfinite");

  private AttentionCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("attention", args, VALUES, SWITCHES);
    if (!f.positional().isEmpty()) {
      throw new UserError("unexpected argument '" + f.positional().get(0) + "'");
    }
    if (f.has("kv-input")) {
      return CrossAttentionCommand.run(f, out);
    }
    Path input = existing(f.required("input"), "--input");
    Path weightsFile = existing(f.required("weights"), "--weights");
    if (TensorFiles.Format.of(weightsFile) == TensorFiles.Format.NPY) {
      throw new UserError("--weights " + weightsFile + ": the weights are four named tensors;"
          + " give a .npz or safetensors file, not one .npy array");
    }
    Path output = Path.of(f.required("output"));
    int heads = f.requiredInt("num-heads");
    int axis = f.requiredInt("axis");
    String backend = f.string("backend", Backends.LOCAL);
    Backends.check(backend);
    int threads = f.positive("threads", Runtime.getRuntime().availableProcessors());
    DeviceFlags devices = DeviceFlags.parse(f);
    String device = devices.device();
    long keyLimit = f.longValue("key-limit", Long.MAX_VALUE);
    boolean local = backend.equals(Backends.LOCAL);
    if (local && (f.has("sp") || f.has("master") || f.has("mesh") || f.has("intra-node-size")
        || f.has("comm"))) {
      throw new UserError("--sp, --master, --mesh, --intra-node-size and --comm need a"
          + " distributed backend such as --backend ring");
    }
    StrategySpec strategy = local ? null : strategySpec(f, backend);
    AttentionGradients gradients = AttentionGradients.parse(f);
    int sp = local ? 1 : tasks(f, strategy);

    Tensor x = TensorFiles.read(input, "x");
    if (x.rank() < 2) {
      throw new UserError("tensor 'x' in " + input + " must have rank >= 2 (embed last), got " + x);
    }
    // Two-axis attention: flatten the axes, attend along the flattened one (-2), restore.
    MultiAxisAttention2D.Flattened flat =
        f.has("axis2") ? MultiAxisAttention2D.Flattened.of(x, axis, f.requiredInt("axis2")) : null;
    Tensor seqInput = flat == null ? x : flat.tensor();
    int attnAxis = flat == null ? axis : -2;
    int axisIndex = MultiAxisAttention.checkAxis(attnAxis, seqInput.rank(), "attentionAxis");
    ShardedInputCheck.requireNonEmpty("x", x,
        flat == null ? axisIndex : Tensor.normalizeAxis(axis, x.rank(), "axis"));
    String prefix = f.string("weights-prefix", "");
    Map<String, Tensor> weightTensors = TensorFiles.readAll(weightsFile);
    GqaWeights gqa = GqaWeights.read(f, weightTensors, prefix, x.dim(-1), heads);
    AttentionWeights w = gqa.weights();
    if (!f.has("allow-nonfinite")) {
      requireFinite(x, gqa.named());
    }
    boolean causal = f.has("causal");
    Tensor dy = gradients == null ? null : AttentionGradients.flatten(
        gradients.readDy(x.shape()), flat, axis, f.integer("axis2", 0));
    Map<String, Tensor> grads = null;
    long start = System.nanoTime();
    Tensor y;
    if (local && gradients != null) {
      try (MultiAxisAttention layer = MultiAxisAttention.builder(x.dim(-1), heads, attnAxis)
          .backend(backend).device(device).gpuDtype(devices.gpuDtype()).weights(w)
          .causal(causal).threads(threads).build()) {
        Map.Entry<Tensor, Map<String, Tensor>> r =
            AttentionGradients.local(layer, seqInput, dy, keyLimit);
        y = r.getKey();
        grads = r.getValue();
      }
    } else if (local) {
      try (MultiAxisAttention layer = MultiAxisAttention.builder(x.dim(-1), heads, attnAxis)
          .backend(backend).device(device).gpuDtype(devices.gpuDtype()).weights(w)
          .causal(causal)
          .threads(threads).build()) {
        y = layer.forward(seqInput, keyLimit);
      }
    } else {
      // Fail on bad sizes and shapes before starting Spark.
      MultiAxisAttention.builder(x.dim(-1), heads, attnAxis).weights(w).threads(1).build().close();
      if (!backend.equals(Backends.AUTO)) {
        strategy.validate(sp, heads);
      }
      gqa.validate(strategy, sp);
      ShardedInputCheck.requireShardable(seqInput.dim(axisIndex),
          flat == null ? "axis " + axisIndex : "axes " + axis + " and " + f.string("axis2", "")
              + " (flattened)", sp, tasksName(f, sp));
      ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, attnAxis, causal, keyLimit,
          w, strategy, device);
      if (gradients == null) {
        y = runSharded(f, seqInput, spec, sp, devices, out, ctx -> ShardedAttention.run(ctx,
            seqInput, spec));
      } else {
        ShardedAttentionBackward.Result r = runSharded(f, seqInput, spec, sp, devices, out,
            ctx -> ShardedAttentionBackward.run(ctx, seqInput, dy, spec));
        y = r.y();
        grads = AttentionGradients.named(r.dx(), r.parameters());
      }
    }
    if (grads != null) {
      grads = gqa.renameGradients(grads);
    }
    if (flat != null) {
      y = flat.restore(y);
      if (grads != null) {
        grads.put("dx", flat.restore(grads.get("dx")));
      }
    }
    double secs = (System.nanoTime() - start) / 1e9;
    TensorFiles.write(output, Map.of("y", y));
    out.printf("wrote y %s to %s (%s, %.3f s)%n", java.util.Arrays.toString(y.shape()), output,
        backend, secs);
    if (grads != null) {
      gradients.write(grads);
      out.printf("wrote %s to %s%n", String.join(", ", grads.keySet()),
          gradients.gradsOutput());
    }
    return 0;
  }

  /** One barrier job on the --master (default: a local slot per task) or spark-submit's. */
  private static <T> T runSharded(Flags f, Tensor seqInput, ShardedAttention.Spec spec, int sp,
      DeviceFlags devices, PrintStream out, java.util.function.Function<MosaicContext, T> job) {
    Map<String, String> conf = new java.util.HashMap<>();
    devices.putInto(conf);
    if (f.has("threads")) {
      conf.put(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
    }
    SparkSession spark = SparkSessions.getOrCreate(
        f.string("master", SparkSessions.defaultMaster(sp)), "mosaic-attention", conf);
    try {
      MosaicContext ctx = MosaicContext.init(spark, sp);
      spark.sparkContext().addSparkListener(new StageProgress(out));
      spark.sparkContext().setJobGroup("mosaic-attention",
          "Mosaic attention: " + spec.strategy() + " over " + sp + " tasks", false);
      return job.apply(ctx);
    } finally {
      spark.stop();
    }
  }

  /**
   * The number of barrier tasks: R·C of a mesh2d or composed --mesh RxC, else --sp (default 2).
   * Both given and different is a usage error, as is --mesh for a backend without a mesh.
   */
  static int tasks(Flags f, StrategySpec strategy) {
    String backend = strategy.backend();
    if (!f.has("mesh")) {
      return f.positive("sp", 2);
    }
    if (!backend.equals(Backends.MESH2D) && !backend.equals(Backends.COMPOSED)) {
      throw new UserError("--mesh shapes --backend mesh2d or composed, not " + backend
          + "; use --sp P for " + backend);
    }
    int fromMesh = strategy.meshRows() * strategy.meshCols();
    if (f.has("sp") && f.positive("sp", fromMesh) != fromMesh) {
      throw new UserError("--sp " + f.string("sp", "") + " disagrees with --mesh "
          + f.string("mesh", "") + ", which needs " + fromMesh + " tasks; give one of them");
    }
    return fromMesh;
  }

  /** Where the task count came from, for error messages: "--sp 4" or "--mesh 2x2". */
  private static String tasksName(Flags f, int sp) {
    return f.has("mesh") && !f.has("sp") ? "--mesh " + f.string("mesh", "") : "--sp " + sp;
  }

  /** x and the weight tensors (named as in the file) hold only finite values. */
  private static void requireFinite(Tensor x, Map<String, Tensor> weights) {
    try {
      ShardedInputCheck.requireFinite("x", x);
      ShardedInputCheck.requireFinite(weights);
    } catch (IllegalArgumentException e) {
      throw new UserError(e.getMessage() + "; --allow-nonfinite lets them through");
    }
  }

  /** --mesh, --intra-node-size, --intra, --inter as a strategy spec. */
  static StrategySpec strategySpec(Flags f, String backend) {
    StrategySpec spec = StrategySpec.of(backend);
    if (f.has("mesh")) {
      String m = f.string("mesh", "");
      String[] parts = m.toLowerCase(java.util.Locale.ROOT).split("x");
      try {
        if (parts.length != 2) {
          throw new NumberFormatException();
        }
        int rows = Integer.parseInt(parts[0].trim());
        int cols = Integer.parseInt(parts[1].trim());
        if (rows < 1 || cols < 1) {
          throw new NumberFormatException();
        }
        spec = spec.withMesh(rows, cols);
      } catch (NumberFormatException e) {
        throw new UserError("--mesh expects ROWSxCOLS of positive integers such as 2x2, got '" + m
          + "'");
      }
    }
    if (f.has("intra-node-size") || f.has("intra") || f.has("inter")) {
      spec = spec.withNodes(f.integer("intra-node-size", 0), f.string("intra", Backends.RING),
          f.string("inter", Backends.RING));
    }
    return spec;
  }

  static Path existing(String file, String flag) {
    Path p = Path.of(file);
    if (!Files.isRegularFile(p)) {
      throw new UserError(flag + " " + file + ": no such file");
    }
    return p;
  }
}
