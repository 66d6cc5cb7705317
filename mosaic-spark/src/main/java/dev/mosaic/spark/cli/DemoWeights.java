package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.ShippedModel;
import dev.mosaic.spark.model.TabularConfig;
import java.nio.file.Path;
import java.util.Map;

/**
 * The demo's model weights and where they came from: the shipped pretrained model by default
 * ({@link ShippedModel}), a checkpoint with {@code --model FILE} (heads from {@code --num-heads}
 * or the file's metadata), or seeded untrained weights with {@code --seeded} (sized by
 * {@link TabularConfig#defaults}).
 *
 * @param description one line for the report
 * @param trained false for seeded weights and for the shipped placeholder
 */
record DemoWeights(Map<String, Tensor> stateDict, int numHeads, String description,
    boolean trained) {

  /** From the demo's flags; the table's classes must fit the model's outputs. */
  static DemoWeights from(Flags f, int classes) {
    if (f.has("seeded") && f.has("model")) {
      throw new UserError("--seeded and --model both choose the weights: give one of them");
    }
    if (f.has("num-heads") && !f.has("model")) {
      throw new UserError("--num-heads goes with --model (the shipped model's heads are in its"
          + " metadata, the seeded model has 2)");
    }
    DemoWeights w;
    int outputs;
    String source;
    if (f.has("seeded")) {
      TabularConfig cfg = TabularConfig.defaults(1, classes);
      return new DemoWeights(cfg.seededWeights(), cfg.heads(),
          "seeded untrained weights (E 32, 2 heads, 2 blocks, MLP 64)", false);
    } else if (f.has("model")) {
      Path file = Path.of(f.string("model", ""));
      Integer heads = f.has("num-heads") ? f.positive("num-heads", 1) : null;
      try (NanoTabPfnModel model = NanoTabPfnCheckpoint.load(file, heads, 1)) {
        w = new DemoWeights(model.stateDict(), model.shape().numHeads(),
            "checkpoint " + file + " (" + model.shape().numHeads() + " heads)", true);
        outputs = model.shape().outputs();
        source = "the model " + file;
      }
    } else {
      ShippedModel.Loaded shipped;
      try {
        shipped = ShippedModel.load();
      } catch (IllegalStateException e) {
        throw new UserError(e.getMessage() + " (--model FILE), or run --seeded");
      }
      w = new DemoWeights(shipped.stateDict(), shipped.numHeads(),
          shipped.description(), !shipped.placeholder());
      outputs = shipped.shape().outputs();
      source = "the shipped model";
    }
    if (classes > outputs) {
      throw new UserError("--classes " + classes + " exceeds the " + outputs + " outputs of "
          + source);
    }
    return w;
  }
}
