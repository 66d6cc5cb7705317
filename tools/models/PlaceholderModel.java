import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnShape;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes the PLACEHOLDER for models/mosaic-tabpfn.safetensors: seeded untrained nanoTabPFN weights
 * (NanoTabPfnInit) of the shipped model's shape (E 64, 4 heads, 3 blocks, MLP 128, 10 outputs), in
 * the layout TrainingCheckpoint writes (num_attention_heads and mosaic_step in the metadata), marked
 * mosaic_placeholder=true so that ShippedModel warns when it loads it. `bin/mosaic pretrain` output
 * replaces it. Deterministic: the same bytes on every run.
 *
 *   java -cp "mosaic-kernels/target/classes:mosaic-spark/target/classes:$(cat mosaic-spark/target/classpath.txt)" \
 *     tools/models/PlaceholderModel.java models/mosaic-tabpfn.safetensors
 */
public final class PlaceholderModel {
  static final NanoTabPfnShape SHAPE = new NanoTabPfnShape(64, 4, 3, 128, 10);
  static final long SEED = 20261202L;

  public static void main(String[] args) {
    if (args.length != 1) {
      System.err.println("usage: PlaceholderModel OUT.safetensors");
      System.exit(2);
    }
    Map<String, Tensor> weights = NanoTabPfnInit.seeded(SHAPE, SEED);
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("num_attention_heads", Integer.toString(SHAPE.numHeads()));
    meta.put("mosaic_step", "0");
    meta.put("mosaic_placeholder", "true");
    meta.put("mosaic_placeholder_seed", Long.toString(SEED));
    Safetensors.write(Path.of(args[0]), weights, meta);
    System.out.println("wrote " + args[0] + ": placeholder " + SHAPE + ", seed " + SEED);
  }
}
