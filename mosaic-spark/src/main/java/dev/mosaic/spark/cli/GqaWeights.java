package dev.mosaic.spark.cli;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.SeparateProjections;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.StrategySpec;
import dev.mosaic.spark.strategy.UlyssesStrategy;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The weights {@code mosaic attention} was given, in either layout: PyTorch's packed
 * {@code in_proj_weight} (multi-head), or Hugging Face-style {@code q_proj/k_proj/v_proj/o_proj}
 * with {@code --num-kv-heads G} (grouped-query; without the flag G comes from
 * {@code k_proj.weight}). Knows which names the file used, so checks and gradients speak them.
 */
record GqaWeights(AttentionWeights weights, Map<String, Tensor> named, boolean separate,
    int heads, int kvHeads) {

  /** Reads and checks the weights; every problem is one line naming the flag or the tensor. */
  static GqaWeights read(Flags f, Map<String, Tensor> tensors, String prefix, int embed,
      int heads) {
    boolean separate = f.has("num-kv-heads") || SeparateProjections.present(tensors, prefix);
    if (!separate) {
      AttentionWeights w = AttentionWeights.from(tensors, prefix, embed);
      return new GqaWeights(w, w.toMap(prefix), false, heads, heads);
    }
    if (heads < 1 || embed % heads != 0) {
      throw new UserError("--num-heads " + heads + " must divide the embedding width " + embed
          + " of x");
    }
    int kvHeads = f.has("num-kv-heads") ? f.positive("num-kv-heads", heads)
        : SeparateProjections.kvHeadsOf(tensors, prefix, embed, heads);
    if (heads % kvHeads != 0) {
      throw new UserError("--num-kv-heads " + kvHeads + " must divide --num-heads " + heads
          + " (each K/V head serves H/G query heads)");
    }
    AttentionWeights w = SeparateProjections.read(tensors, prefix, embed, heads, kvHeads);
    Map<String, Tensor> named = new LinkedHashMap<>();
    for (String proj : new String[] {SeparateProjections.Q, SeparateProjections.K,
        SeparateProjections.V, SeparateProjections.O}) {
      for (String part : new String[] {SeparateProjections.WEIGHT, SeparateProjections.BIAS}) {
        Tensor t = tensors.get(prefix + proj + part);
        if (t != null) {
          named.put(prefix + proj + part, t);
        }
      }
    }
    return new GqaWeights(w, named, true, heads, kvHeads);
  }

  /**
   * Fails before Spark starts when a distributed strategy cannot run these K/V heads: mesh2d,
   * composed and a hierarchical one other than ring/ring need G = H; Ulysses needs G dividing or
   * divisible by the task count. {@code auto} passes: the planner offers only strategies that run
   * G K/V heads.
   */
  void validate(StrategySpec strategy, int tasks) {
    if (kvHeads == heads) {
      return;
    }
    String backend = strategy.backend();
    boolean ringInRing = Backends.RING.equals(orRing(strategy.intra()))
        && Backends.RING.equals(orRing(strategy.inter()));
    switch (backend) {
      case Backends.MESH2D, Backends.COMPOSED -> throw refused("--backend "
          + backend);
      case Backends.HIERARCHICAL -> {
        if (!ringInRing) {
          throw refused("--backend hierarchical with --intra " + orRing(strategy.intra())
              + " --inter " + orRing(strategy.inter()));
        }
      }
      case Backends.ULYSSES -> {
        try {
          UlyssesStrategy.checkKvHeads(heads, kvHeads, tasks);
        } catch (IllegalArgumentException e) {
          throw new UserError(e.getMessage());
        }
      }
      default -> { }
    }
  }

  private UserError refused(String what) {
    return new UserError(what + " does not run grouped-query attention (--num-kv-heads "
        + kvHeads + " < --num-heads " + heads + "); use --backend local, ring, hierarchical"
        + " (ring inside and between nodes), ulysses or auto");
  }

  private static String orRing(String s) {
    return s == null || s.isEmpty() ? Backends.RING : s;
  }

  /**
   * Gradients under the packed names, renamed to the layout of the weights given: q_proj.weight,
   * q_proj.bias, ..., o_proj.bias (unprefixed, as the packed names are); dx is kept.
   */
  Map<String, Tensor> renameGradients(Map<String, Tensor> grads) {
    return separate ? SeparateProjections.split(grads, weights.outProjWeight().dim(0),
        weights.kvDim()) : grads;
  }
}
