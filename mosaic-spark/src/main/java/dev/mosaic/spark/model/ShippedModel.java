package dev.mosaic.spark.model;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;

/**
 * The pretrained nanoTabPFN model that ships with Mosaic ({@value #FILE_NAME}, trained on the
 * prior only; see docs/model.md), the default weights of {@code bin/mosaic demo} and of the ML
 * {@code TabularAttentionClassifier}. Found, in this order:
 * <ol>
 *   <li>{@code <mosaic.home>/models/}{@value #FILE_NAME} when the system property
 *       {@code mosaic.home} is set (bin/mosaic sets it to the repository): the file in the
 *       working tree wins over a copy in a jar built before it changed;
 *   <li>the classpath resource {@value #RESOURCE}: the build copies {@code models/} into
 *       mosaic-spark's jar, so Maven consumers, notebooks and spark-submit find it there.
 * </ol>
 * A file whose metadata says {@value #PLACEHOLDER_KEY}{@code =true} holds seeded untrained
 * weights standing in until the trained model is committed; loading it logs a WARNING.
 */
public final class ShippedModel {
  public static final String FILE_NAME = "mosaic-tabpfn.safetensors";
  public static final String RESOURCE = "/dev/mosaic/models/" + FILE_NAME;
  /** Metadata key that marks a placeholder (untrained) file. */
  public static final String PLACEHOLDER_KEY = "mosaic_placeholder";
  private static final System.Logger LOG = System.getLogger(ShippedModel.class.getName());

  /**
   * The loaded model.
   *
   * @param source where it came from (a path, or {@code classpath:...})
   * @param metadata the file's {@code __metadata__} (training step, settings)
   */
  public record Loaded(Map<String, Tensor> stateDict, NanoTabPfnShape shape, String source,
      Map<String, String> metadata) {
    public int numHeads() {
      return shape.numHeads();
    }

    /** Whether this is the placeholder (seeded untrained weights), not a trained model. */
    public boolean placeholder() {
      return "true".equalsIgnoreCase(metadata.getOrDefault(PLACEHOLDER_KEY, "").trim());
    }

    /** One line for reports: sizes, training step, source, and whether it is a placeholder. */
    public String description() {
      String step = metadata.get("mosaic_step");
      return "shipped model " + FILE_NAME + " (E " + shape.embedDim() + ", "
          + shape.numHeads() + " heads, " + shape.layers() + " blocks, MLP " + shape.mlpHidden()
          + ", " + shape.outputs() + " outputs" + (step == null ? "" : ", step " + step.trim())
          + ") from " + source + (placeholder() ? "; PLACEHOLDER: untrained weights" : "");
    }
  }

  private ShippedModel() {}

  /** Loads the shipped model from {@code mosaic.home} or the classpath (see the class doc). */
  public static Loaded load() {
    return load(System.getProperty("mosaic.home"), ShippedModel.class);
  }

  /**
   * Loads from {@code home}{@code /models/} (when {@code home} is non-null and the file is there),
   * else from {@code anchor}'s classpath.
   *
   * @throws IllegalStateException in one line when neither has the file
   */
  static Loaded load(String home, Class<?> anchor) {
    if (home != null && !home.isBlank()) {
      Path file = Path.of(home, "models", FILE_NAME);
      if (Files.isRegularFile(file)) {
        return read(file, file.toString());
      }
    }
    try (InputStream in = anchor.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException("the shipped model " + FILE_NAME + " is missing: expected"
            + " it on the classpath at " + RESOURCE.substring(1)
            + (home == null || home.isBlank() ? "" : " or at " + Path.of(home, "models", FILE_NAME))
            + " (rebuild mosaic-spark, which packs models/ into its jar), or give a checkpoint"
            + " file instead");
      }
      // Safetensors reads files (it maps the header and data by offset): copy the resource out.
      Path tmp = Files.createTempFile("mosaic-tabpfn", ".safetensors");
      try {
        Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
        return read(tmp, "classpath:" + RESOURCE.substring(1));
      } finally {
        Files.deleteIfExists(tmp);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the shipped model " + RESOURCE + ": " + e, e);
    }
  }

  private static Loaded read(Path file, String source) {
    Map<String, Tensor> tensors = Safetensors.read(file);
    Map<String, String> metadata = Safetensors.metadata(file);
    int heads = NanoTabPfnCheckpoint.heads(file, null, metadata);
    NanoTabPfnShape shape = NanoTabPfnCheckpoint.check(source, tensors, heads);
    Loaded loaded = new Loaded(NanoTabPfnCheckpoint.ordered(shape, tensors), shape, source,
        Map.copyOf(metadata));
    if (loaded.placeholder()) {
      LOG.log(System.Logger.Level.WARNING, "the shipped model " + source + " is a PLACEHOLDER"
          + " (seeded untrained weights, metadata " + PLACEHOLDER_KEY + "=true): its predictions"
          + " are noise until the trained model replaces models/" + FILE_NAME);
    }
    return loaded;
  }
}
