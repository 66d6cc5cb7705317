package dev.mosaic.kernels.simd;

import java.lang.System.Logger.Level;

/**
 * Chooses the {@link FlashOps} implementation once per JVM, like Lucene's
 * {@code VectorizationProvider}: the SIMD one when {@code jdk.incubator.vector} is in the boot
 * layer (the JVM was started with {@code --add-modules jdk.incubator.vector}) and the preferred
 * vector is at least 128 bits; the scalar one otherwise, or when
 * {@code -Dmosaic.simd=scalar} asks for it. The choice and its reason are logged once.
 */
public final class VectorizationProvider {
  private static final System.Logger LOG = System.getLogger(VectorizationProvider.class.getName());
  private static final String PANAMA_CLASS = "dev.mosaic.kernels.simd.PanamaFlashOps";

  private static final class Holder {
    static final Choice CHOICE = choose();
  }

  /** The implementation in use and why it was chosen. */
  public record Choice(FlashOps ops, String reason) {}

  private VectorizationProvider() {}

  public static FlashOps ops() {
    return Holder.CHOICE.ops();
  }

  public static Choice choice() {
    return Holder.CHOICE;
  }

  private static Choice choose() {
    Choice c = decide();
    LOG.log(Level.INFO, "Mosaic CPU kernel uses " + c.ops().name() + " ops: " + c.reason());
    return c;
  }

  private static Choice decide() {
    String forced = System.getProperty("mosaic.simd", "auto");
    if (forced.equalsIgnoreCase("scalar")) {
      return new Choice(new ScalarFlashOps(), "-Dmosaic.simd=scalar");
    }
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
      return new Choice(new ScalarFlashOps(),
          "jdk.incubator.vector is not loaded; start the JVM with --add-modules jdk.incubator.vector"
              + " for SIMD");
    }
    try {
      FlashOps ops = (FlashOps) Class.forName(PANAMA_CLASS).getDeclaredConstructor().newInstance();
      if (ops.lanes() < 4) {
        return new Choice(new ScalarFlashOps(),
            "preferred vector holds only " + ops.lanes() + " floats");
      }
      return new Choice(ops, "jdk.incubator.vector with " + ops.lanes() + " float lanes, "
          + ops.describe());
    } catch (ReflectiveOperationException | LinkageError e) {
      return new Choice(new ScalarFlashOps(), "SIMD ops failed to load: " + e);
    }
  }
}
