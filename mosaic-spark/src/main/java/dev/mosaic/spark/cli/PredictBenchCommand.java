package dev.mosaic.spark.cli;

import dev.mosaic.spark.bench.PredictBenchmark;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/** {@code mosaic bench predict}: flags to {@link PredictBenchmark}, and its verdict to the exit. */
final class PredictBenchCommand {
  /** Weights and table come from fixed seeds, so two runs score the same numbers. */
  private static final long SEED = 1234;

  private PredictBenchCommand() {}

  static int run(String[] args, PrintStream out) {
    Flags f = Flags.parse("bench predict", args, Set.of("train", "test", "batch", "features",
        "embed", "heads", "layers", "threads", "calls", "model"), Set.of());
    if (!f.positional().isEmpty()) {
      throw new UserError("unexpected argument '" + f.positional().get(0) + "'");
    }
    if (f.has("model") && (f.has("embed") || f.has("heads") || f.has("layers"))) {
      throw new UserError("--model sets the model's sizes; drop --embed, --heads and --layers");
    }
    int threads = f.positive("threads", Runtime.getRuntime().availableProcessors());
    PredictBenchmark.Sizes sizes = new PredictBenchmark.Sizes(f.positive("train", 20_000),
        f.positive("test", 100_000), f.positive("batch", 1000), f.positive("features", 10),
        f.positive("calls", 3), threads);
    try (NanoTabPfnModel model = model(f, threads)) {
      PredictBenchmark.Result r = PredictBenchmark.run(model, sizes, SEED, out);
      if (!(r.maxDelta() <= PredictBenchmark.MAX_DELTA)) {
        out.printf(Locale.ROOT, "FAILED: cached and recomputed logits differ by %.2e (limit"
            + " %.0e): the train-row cache does not match the model%n", r.maxDelta(),
            PredictBenchmark.MAX_DELTA);
        return 1;
      }
      return 0;
    }
  }

  private static NanoTabPfnModel model(Flags f, int threads) {
    if (f.has("model")) {
      Path file = AttentionCommand.existing(f.required("model"), "--model");
      return NanoTabPfnCheckpoint.load(file, null, threads);
    }
    int e = f.positive("embed", 32);
    int heads = f.positive("heads", 2);
    if (e % heads != 0) {
      throw new UserError("--heads " + heads + " must divide --embed " + e);
    }
    NanoTabPfnShape shape = new NanoTabPfnShape(e, heads, f.positive("layers", 2), 2 * e, 3);
    return NanoTabPfnModel.fromStateDict("seeded weights", NanoTabPfnInit.seeded(shape, SEED),
        heads, null, threads);
  }
}
