package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.layers.MultiAxisAttention2D;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedAttention;
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
 * {@code mosaic attention}: reads tensor {@code x} from a safetensors file, applies
 * {@link MultiAxisAttention} with weights from another, writes tensor {@code y}. The contract
 * other tools call.
 */
final class AttentionCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic attention --input X.safetensors --weights W.safetensors --output Y.safetensors",
      "                        --num-heads H --axis A [--causal] [--key-limit N]",
      "                        [--backend local|ring|mesh2d|ulysses|composed|hierarchical|auto]",
      "                        [--sp P] [--mesh RxC] [--intra-node-size N] [--intra ring|ulysses]",
      "                        [--inter ring|mesh2d] [--axis2 B] [--master URL] [--threads N]",
      "                        [--weights-prefix P] " + DeviceFlags.USAGE,
      "  Reads tensor 'x' (float32, rank >= 2, embed last), attends along axis A (negative counts",
      "  from the end), writes tensor 'y' of the same shape. Weights use PyTorch",
      "  nn.MultiheadAttention names: in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias.",
      "  A distributed backend shards the axis over --sp P Spark barrier tasks (default master",
      "  local[*]; --threads is then per task). --mesh: mesh2d grid rows x cols, or composed",
      "  head-ways x sequence-ways. --axis2: attend over axes A and B at once (A outer).",
      "  --device auto computes on the GPU Spark assigned to each task (or CUDA_VISIBLE_DEVICES),",
      "  else the CPU; --gpu-dtype stores Q/K/V on the GPU as fp16/bf16 (fp32 arithmetic);",
      "  --comm auto uses NCCL between tasks that each own a GPU, else TCP.");

  private static final Set<String> VALUES = Set.of("input", "weights", "output", "num-heads",
      "axis", "backend", "threads", "weights-prefix", "key-limit", "sp", "master", "mesh",
      "intra-node-size", "intra", "inter", "axis2", "device", "gpu-dtype", "comm");
  private static final Set<String> SWITCHES = Set.of("causal");

  private AttentionCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("attention", args, VALUES, SWITCHES);
    if (!f.positional().isEmpty()) {
      throw new UserError("unexpected argument '" + f.positional().get(0) + "'");
    }
    Path input = existing(f.required("input"), "--input");
    Path weightsFile = existing(f.required("weights"), "--weights");
    Path output = Path.of(f.required("output"));
    int heads = f.requiredInt("num-heads");
    int axis = f.requiredInt("axis");
    String backend = f.string("backend", Backends.LOCAL);
    Backends.check(backend);
    int threads = f.positive("threads", Runtime.getRuntime().availableProcessors());
    DeviceFlags devices = DeviceFlags.parse(f);
    String device = devices.device();
    long keyLimit = f.longValue("key-limit", Long.MAX_VALUE);

    Tensor x = Safetensors.read(input, "x");
    if (x.rank() < 2) {
      throw new UserError("tensor 'x' in " + input + " must have rank >= 2 (embed last), got " + x);
    }
    Map<String, Tensor> weights = Safetensors.read(weightsFile);
    String prefix = f.string("weights-prefix", "");
    boolean causal = f.has("causal");
    long start = System.nanoTime();
    // Two-axis attention: flatten the axes, attend along the flattened one (-2), restore.
    MultiAxisAttention2D.Flattened flat =
        f.has("axis2") ? MultiAxisAttention2D.Flattened.of(x, axis, f.requiredInt("axis2")) : null;
    Tensor seqInput = flat == null ? x : flat.tensor();
    int attnAxis = flat == null ? axis : -2;
    Tensor y;
    if (backend.equals(Backends.LOCAL)) {
      if (f.has("sp") || f.has("master") || f.has("mesh") || f.has("intra-node-size")
          || f.has("comm")) {
        throw new UserError("--sp, --master, --mesh, --intra-node-size and --comm need a"
            + " distributed backend such as --backend ring");
      }
      try (MultiAxisAttention layer = MultiAxisAttention.builder(x.dim(-1), heads, attnAxis)
          .backend(backend).device(device).gpuDtype(devices.gpuDtype()).weights(weights, prefix)
          .causal(causal)
          .threads(threads).build()) {
        y = layer.forward(seqInput, keyLimit);
      }
    } else {
      int sp = f.positive("sp", 2);
      AttentionWeights w = AttentionWeights.from(weights, prefix, x.dim(-1));
      // Fail on bad sizes and shapes before starting Spark.
      MultiAxisAttention.builder(x.dim(-1), heads, attnAxis).weights(w).threads(1).build().close();
      StrategySpec strategy = strategySpec(f, backend);
      if (!backend.equals(Backends.AUTO)) {
        strategy.validate(sp, heads);
      }
      Map<String, String> conf = new java.util.HashMap<>();
      devices.putInto(conf);
      if (f.has("threads")) {
        conf.put(MosaicConfig.TASK_THREADS, Integer.toString(threads));
      }
      SparkSession spark =
          SparkSessions.getOrCreate(f.string("master", "local[*]"), "mosaic-attention", conf);
      try {
        MosaicContext ctx = MosaicContext.init(spark, sp);
        spark.sparkContext().addSparkListener(new StageProgress(out));
        spark.sparkContext().setJobGroup("mosaic-attention",
            "Mosaic attention: " + strategy + " over " + sp + " tasks", false);
        y = ShardedAttention.run(ctx, seqInput,
            new ShardedAttention.Spec(heads, attnAxis, causal, keyLimit, w, strategy, device));
      } finally {
        spark.stop();
      }
    }
    if (flat != null) {
      y = flat.restore(y);
    }
    double secs = (System.nanoTime() - start) / 1e9;
    Safetensors.write(output, Map.of("y", y));
    out.printf("wrote y %s to %s (%s, %.3f s)%n", java.util.Arrays.toString(y.shape()), output,
        backend, secs);
    return 0;
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
        spec = spec.withMesh(Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim()));
      } catch (NumberFormatException e) {
        throw new UserError("--mesh expects ROWSxCOLS such as 2x2, got '" + m + "'");
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
