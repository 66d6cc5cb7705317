package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.kernels.io.TensorNames;
import dev.mosaic.spark.jobs.AttentionTableJob;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.SeparateProjections;
import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.ShardedAttention;
import dev.mosaic.spark.runner.SparkSessions;
import dev.mosaic.spark.runner.StageProgress;
import dev.mosaic.spark.strategy.Backends;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/** {@code mosaic attention-table}: a Parquet table of sequences in, attention outputs out. */
final class AttentionTableCommand {
  static final String USAGE = String.join("\n",
      "usage: mosaic attention-table --input IN.parquet --weights W.safetensors --num-heads H",
      "                              [--num-kv-heads G]",
      "                              --output OUT.parquet [--key-col key] [--pos-col pos]",
      "                              [--emb-col emb] [--out-col attention] [--causal]",
      "                              [--key-limit N] [--sp P] [--task-memory 1g]",
      "                              [--backend ring|auto] [--master URL] [--threads N]",
      "                              [--weights-prefix P] " + DeviceFlags.USAGE,
      "  Reads rows (key, position, embedding array<float> or array<array<float>>) from Parquet,",
      "  attends along the positions of every sequence (any lengths, positions 0..n-1 per key),",
      "  writes one row (key, position, out-col) per input row. Sequences that fit --task-memory",
      "  run whole in ordinary tasks, packed by cost; longer ones are sharded over up to --sp P",
      "  barrier tasks (default 2) with ring or the planner's pick (auto). Prints the plan and",
      "  each stage's progress. Bad input fails before anything is written; the output holds the",
      "  complete result or what it held before. Weights: PyTorch nn.MultiheadAttention names",
      "  (in_proj_weight, out_proj.*), or Hugging Face-style q_proj/k_proj/v_proj/o_proj",
      "  (.weight, optional .bias) as for 'mosaic attention': --num-kv-heads G gives",
      "  grouped-query attention, k_proj/v_proj.weight [G*E/H, E], G dividing H (without the",
      "  flag G comes from k_proj.weight).");

  private static final Set<String> VALUES = Set.of("input", "weights", "output", "num-heads",
      "num-kv-heads",
      "key-col", "pos-col", "emb-col", "out-col", "key-limit", "sp", "task-memory", "backend",
      "master", "threads", "weights-prefix", "device", "gpu-dtype", "comm");

  private AttentionTableCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("attention-table", args, VALUES, Set.of("causal"));
    if (!f.positional().isEmpty()) {
      throw new UserError("unexpected argument '" + f.positional().get(0) + "'");
    }
    String input = f.required("input");
    Path weightsFile = AttentionCommand.existing(f.required("weights"), "--weights");
    String output = f.required("output");
    int heads = f.requiredInt("num-heads");
    String backend = f.string("backend", Backends.RING);
    if (!backend.equals(Backends.RING) && !backend.equals(Backends.AUTO)) {
      throw new UserError("--backend must be ring or auto for attention-table, got '" + backend
          + "'");
    }
    int sp = f.positive("sp", 2);
    DeviceFlags devices = DeviceFlags.parse(f);
    String prefix = f.string("weights-prefix", "");
    Map<String, Tensor> tensors = TensorFiles.readAll(weightsFile);
    int embed = embedOf(tensors, prefix, weightsFile);
    if (heads < 1 || embed % heads != 0) {
      throw new UserError("--num-heads " + heads + " must be positive and divide the embedding"
          + " width " + embed + " of --weights " + weightsFile);
    }
    // The loader of 'mosaic attention': packed or q/k/v/o_proj, --num-kv-heads, one-line errors.
    // Its strategy check is not needed: ring runs GQA, and auto picks among the strategies that
    // do (the planner leaves mesh2d and composed out when there are fewer K/V heads).
    GqaWeights gqa = GqaWeights.read(f, tensors, prefix, embed, heads);
    ShardedAttention.Spec spec = new ShardedAttention.Spec(heads, 0, f.has("causal"),
        f.longValue("key-limit", Long.MAX_VALUE), gqa.weights(),
        dev.mosaic.spark.strategy.StrategySpec.of(backend), devices.device());
    AttentionTableJob.Columns cols = new AttentionTableJob.Columns(f.string("key-col", "key"),
        f.string("pos-col", "pos"), f.string("emb-col", "emb"),
        f.string("out-col", "attention"));

    Map<String, String> conf = new HashMap<>();
    devices.putInto(conf);
    SparkSession spark = SparkSessions.getOrCreate(
        f.string("master", SparkSessions.defaultMaster(sp)), "mosaic-attention-table", conf);
    try {
      // Per-call settings, so they hold also in a session that already existed.
      MosaicContext ctx = MosaicContext.init(spark, sp);
      if (f.has("threads")) {
        ctx = ctx.with(MosaicConfig.TASK_THREADS, Integer.toString(f.positive("threads", 1)));
      }
      if (f.has("task-memory")) {
        ctx = ctx.with(MosaicConfig.TASK_MEMORY, f.string("task-memory", "1g"));
      }
      spark.sparkContext().addSparkListener(new StageProgress(out));
      spark.sparkContext().setJobGroup("mosaic-attention-table",
          "Mosaic attention over the sequences of " + input, false);
      AttentionTableJob.run(ctx, input, cols, spec, output, out);
    } finally {
      spark.stop();
    }
    return 0;
  }

  /**
   * The embedding width E: columns of {@code q_proj.weight} (Hugging Face layout) or of
   * {@code in_proj_weight} (PyTorch's packed one).
   */
  private static int embedOf(Map<String, Tensor> tensors, String prefix, Path file) {
    for (String name : new String[] {SeparateProjections.Q + SeparateProjections.WEIGHT,
        AttentionWeights.IN_PROJ_WEIGHT}) {
      Tensor t = tensors.get(prefix + name);
      if (t != null && t.rank() == 2) {
        return t.dim(1);
      }
    }
    throw new UserError("--weights " + file + " has no 2-D tensor '" + prefix
        + AttentionWeights.IN_PROJ_WEIGHT + "' (PyTorch nn.MultiheadAttention names) or '"
        + prefix + SeparateProjections.Q + SeparateProjections.WEIGHT + "' (Hugging Face"
        + " q_proj/k_proj/v_proj/o_proj); it holds " + TensorNames.list(tensors.keySet()));
  }
}
