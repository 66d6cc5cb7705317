package dev.mosaic.kernels.simd;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float species every Panama loop uses: the preferred one, or a narrower one asked for with
 * {@code -Dmosaic.simd.bits=128|256} (to run AVX2's 256-bit tiles on an AVX-512 machine; add
 * {@code -XX:UseAVX=2} to also limit C2 to AVX2's 16 registers). A static final constant, so C2
 * folds it into the vector code. Loaded only by the Panama classes.
 */
final class PanamaSpecies {
  static final VectorSpecies<Float> FLOAT = choose(System.getProperty("mosaic.simd.bits", ""));

  private PanamaSpecies() {}

  static VectorSpecies<Float> choose(String bits) {
    VectorSpecies<Float> preferred = FloatVector.SPECIES_PREFERRED;
    if (bits.isBlank() || bits.equalsIgnoreCase("auto")) {
      return preferred;
    }
    int wanted;
    try {
      wanted = Integer.parseInt(bits.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "mosaic.simd.bits must be 128, 256, 512 or auto, got '" + bits + "'");
    }
    if (wanted != 128 && wanted != 256 && wanted != 512) {
      throw new IllegalArgumentException(
          "mosaic.simd.bits must be 128, 256, 512 or auto, got '" + bits + "'");
    }
    if (wanted > preferred.vectorBitSize()) {
      throw new IllegalArgumentException("mosaic.simd.bits=" + wanted + " is wider than this"
          + " machine's preferred vector (" + preferred.vectorBitSize() + " bits)");
    }
    return VectorSpecies.of(float.class, VectorShape.forBitSize(wanted));
  }
}
