package dev.mosaic.kernels;

import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/**
 * The shapes every attention kernel is checked on — CPU and CUDA alike, so both answer for the
 * same cases: batch, query length, key length, heads, head dim. Odd lengths cross tile edges;
 * head dims cover the kernels' size buckets.
 */
public final class KernelShapes {
  private KernelShapes() {}

  public static Stream<Arguments> common() {
    return Stream.of(
        // batch, seqQ, seqK, heads, headDim
        Arguments.of(1, 1, 1, 1, 8),
        Arguments.of(1, 13, 13, 2, 16),
        Arguments.of(2, 13, 207, 3, 24),
        Arguments.of(1, 207, 64, 4, 32),
        Arguments.of(1, 1000, 1037, 8, 64),
        Arguments.of(3, 65, 129, 1, 128),
        Arguments.of(1, 130, 70, 5, 40),
        Arguments.of(4, 8, 8, 8, 8));
  }
}
