package dev.mosaic.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class PanamaSpeciesTest {

  @Test
  void autoIsThePreferredSpecies() {
    assertEquals(FloatVector.SPECIES_PREFERRED, PanamaSpecies.choose(""));
    assertEquals(FloatVector.SPECIES_PREFERRED, PanamaSpecies.choose("auto"));
  }

  @Test
  void narrowerWidthsCanBeForced() {
    assertEquals(128, PanamaSpecies.choose("128").vectorBitSize());
    if (FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256) {
      assertEquals(256, PanamaSpecies.choose("256").vectorBitSize());
    }
  }

  @Test
  void badWidthsAreRejectedWithTheValue() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> PanamaSpecies.choose("300"));
    assertEquals("mosaic.simd.bits must be 128, 256, 512 or auto, got '300'", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> PanamaSpecies.choose("wide"));
  }

  @Test
  void peakProbeCountsItsFlops() {
    // Sanity only (the machine is shared): a positive, finite rate on one and two threads.
    for (int threads = 1; threads <= 2; threads++) {
      double flops = PeakFlops.get().measure(threads, 100);
      assertTrue(flops > 1e8 && Double.isFinite(flops), "peak " + flops);
    }
  }
}
