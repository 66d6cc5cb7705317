package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.TensorFiles;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.CrossAxisAttention;
import dev.mosaic.spark.layers.MultiAxisAttention;
import dev.mosaic.spark.runner.ShardedInputCheck;
import dev.mosaic.spark.strategy.Backends;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code mosaic attention … --kv-input KV}: cross-attention ({@link CrossAxisAttention}). Queries
 * from tensor {@code x} of --input, keys and values from tensor {@code kv} of KV (the one array
 * of a {@code .npy}); the two agree on every axis but --axis. Runs in this JVM only: the
 * distributed ring for cross-attention is the Java API's (a {@code RingStrategy} with a query
 * and a key layout), so flags that shard or change the attention are refused in one line.
 */
final class CrossAttentionCommand {
  static final String USAGE = String.join("\n",
      "  --kv-input KV: cross-attention: queries from x, keys and values from tensor 'kv' of KV",
      "  (same shape as x except along --axis, whose length may differ), as PyTorch's",
      "  nn.MultiheadAttention(query=x, key=kv, value=kv). --causal: query i sees kv positions",
      "  <= i. Runs with --backend local; --grads-output then also holds dkv.");

  /** Flags of 'attention' that cross-attention does not take, with the reason. */
  private static final Map<String, String> REFUSED = refused();

  private CrossAttentionCommand() {}

  private static Map<String, String> refused() {
    Map<String, String> m = new LinkedHashMap<>();
    for (String flag : List.of("sp", "master", "mesh", "intra-node-size", "intra", "inter",
        "comm")) {
      m.put(flag, "shards over Spark tasks");
    }
    m.put("axis2", "flattens two axes of x alone");
    m.put("key-limit", "bounds self-attention keys");
    return m;
  }

  static int run(Flags f, PrintStream out) {
    String backend = f.string("backend", Backends.LOCAL);
    if (!backend.equals(Backends.LOCAL)) {
      throw new UserError("--kv-input runs with --backend local, got --backend " + backend
          + "; across ranks use the Java API: CrossAxisAttention with a RingStrategy(comm,"
          + " queryLayout, keyLayout, kernel)");
    }
    REFUSED.forEach((flag, why) -> {
      if (f.has(flag)) {
        throw new UserError("--" + flag + " " + why + " and does not go with --kv-input");
      }
    });
    Path input = AttentionCommand.existing(f.required("input"), "--input");
    Path kvInput = AttentionCommand.existing(f.required("kv-input"), "--kv-input");
    Path weightsFile = AttentionCommand.existing(f.required("weights"), "--weights");
    Path output = Path.of(f.required("output"));
    int heads = f.requiredInt("num-heads");
    int axis = f.requiredInt("axis");
    int threads = f.positive("threads", Runtime.getRuntime().availableProcessors());
    DeviceFlags devices = DeviceFlags.parse(f);
    AttentionGradients gradients = AttentionGradients.parse(f);

    Tensor x = TensorFiles.read(input, "x");
    Tensor kv = TensorFiles.read(kvInput, "kv");
    if (x.rank() < 2) {
      throw new UserError("tensor 'x' in " + input + " must have rank >= 2 (embed last), got " + x);
    }
    int ax = MultiAxisAttention.checkAxis(axis, x.rank(), "--axis");
    ShardedInputCheck.requireNonEmpty("x", x, ax);
    String prefix = f.string("weights-prefix", "");
    AttentionWeights w = AttentionWeights.from(TensorFiles.readAll(weightsFile), prefix, x.dim(-1));
    if (!f.has("allow-nonfinite")) {
      try {
        ShardedInputCheck.requireFinite("x", x);
        ShardedInputCheck.requireFinite("kv", kv);
        ShardedInputCheck.requireFinite(w.toMap(prefix));
      } catch (IllegalArgumentException e) {
        throw new UserError(e.getMessage() + "; --allow-nonfinite lets them through");
      }
    }
    long start = System.nanoTime();
    Tensor y;
    Map<String, Tensor> grads = null;
    try (CrossAxisAttention layer = new CrossAxisAttention(MultiAxisAttention
        .builder(x.dim(-1), heads, axis).backend(backend).device(devices.device())
        .gpuDtype(devices.gpuDtype()).weights(w).causal(f.has("causal")).threads(threads))) {
      if (gradients == null) {
        y = layer.forward(x, kv);
      } else {
        Tensor dy = gradients.readDy(x.shape());
        CrossAxisAttention.Activations a = layer.forwardForBackward(x, kv);
        CrossAxisAttention.Gradients g = layer.backward(a, dy);
        y = a.output();
        grads = new LinkedHashMap<>();
        grads.put("dx", g.dx());
        grads.put("dkv", g.dkv());
        grads.putAll(g.parameters());
      }
    }
    double secs = (System.nanoTime() - start) / 1e9;
    TensorFiles.write(output, Map.of("y", y));
    out.printf("wrote y %s to %s (cross-attention over kv %s, %s, %.3f s)%n",
        java.util.Arrays.toString(y.shape()), output, java.util.Arrays.toString(kv.shape()),
        backend, secs);
    if (grads != null) {
      gradients.write(grads);
      out.printf("wrote %s to %s%n", String.join(", ", grads.keySet()), gradients.gradsOutput());
    }
    return 0;
  }
}
