package dev.mosaic.kernels.simd;

import java.lang.System.Logger.Level;

/**
 * Chooses the {@link BackwardOps} once per JVM, following {@link VectorizationProvider}'s choice
 * for the forward: SIMD backward ops exactly when the forward runs SIMD ops (same module check,
 * same {@code -Dmosaic.simd=scalar} switch, same lanes), scalar ones otherwise. Logged once.
 */
public final class BackwardVectorization {
  private static final System.Logger LOG = System.getLogger(BackwardVectorization.class.getName());
  private static final String PANAMA_CLASS = "dev.mosaic.kernels.simd.PanamaBackwardOps";

  private static final class Holder {
    static final Choice CHOICE = choose();
  }

  /** The implementation in use and why it was chosen. */
  public record Choice(BackwardOps ops, String reason) {}

  private BackwardVectorization() {}

  public static BackwardOps ops() {
    return Holder.CHOICE.ops();
  }

  public static Choice choice() {
    return Holder.CHOICE;
  }

  /** The backward ops that pair with {@code forward}: SIMD for SIMD, scalar for scalar. */
  public static BackwardOps pairedWith(FlashOps forward) {
    return forward.lanes() == 1 ? new ScalarBackwardOps() : ops();
  }

  private static Choice choose() {
    Choice c = decide();
    LOG.log(Level.INFO, "Mosaic CPU attention backward uses " + c.ops().name() + " ops: "
        + c.reason());
    return c;
  }

  private static Choice decide() {
    FlashOps forward = VectorizationProvider.ops();
    if (forward.lanes() == 1) {
      return new Choice(new ScalarBackwardOps(),
          "the forward kernel uses scalar ops (" + VectorizationProvider.choice().reason() + ")");
    }
    try {
      BackwardOps ops =
          (BackwardOps) Class.forName(PANAMA_CLASS).getDeclaredConstructor().newInstance();
      if (ops.lanes() != forward.lanes()) {
        return new Choice(new ScalarBackwardOps(), "SIMD backward has " + ops.lanes()
            + " lanes but the forward " + forward.lanes());
      }
      return new Choice(ops, "jdk.incubator.vector with " + ops.lanes() + " float lanes");
    } catch (ReflectiveOperationException | LinkageError e) {
      return new Choice(new ScalarBackwardOps(), "SIMD backward ops failed to load: " + e);
    }
  }
}
