package dev.mosaic.spark.strategy;

import java.util.List;

/** Which strategies have a backward pass, and the one-line refusal for those that do not. */
public final class BackwardSupport {
  /** Backends whose strategy implements {@link Strategy#attendBackward}. */
  public static final List<String> BACKENDS = List.of(Backends.LOCAL, Backends.RING, Backends.ULYSSES);

  private BackwardSupport() {}

  static UnsupportedOperationException missing(String strategy) {
    return new UnsupportedOperationException("strategy " + strategy
        + " has no backward pass; backends with one: " + String.join(", ", BACKENDS));
  }
}
