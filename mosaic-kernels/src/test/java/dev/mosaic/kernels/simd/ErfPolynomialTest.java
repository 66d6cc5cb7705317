package dev.mosaic.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Erf;
import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The GELU's float erf against erf in double, and the SIMD loop against the scalar one. */
class ErfPolynomialTest {

  @Test
  void erfIsWithinOneTenthOfAMillionthOfErfInDouble() {
    // Every 64th float in [0, 4.5) (about 1.1 million points, both fits and the cut-offs) and a
    // coarse sweep out to 30. The float result can be no closer than half an ulp of erf (3e-8
    // near 1); 1e-7 leaves room for a couple of roundings in the polynomial.
    double worst = 0;
    float worstAt = 0;
    for (int bits = 0; Float.intBitsToFloat(bits) < 4.5f; bits += 64) {
      float z = Float.intBitsToFloat(bits);
      for (float s : new float[] {z, -z}) {
        double err = Math.abs(ErfPolynomial.erf(s) - Erf.erf(s));
        if (err > worst) {
          worst = err;
          worstAt = s;
        }
      }
    }
    for (float z = 4.5f; z < 30f; z += 0.01f) {
      worst = Math.max(worst, Math.abs(ErfPolynomial.erf(z) - Erf.erf(z)));
    }
    System.out.printf("max |erf error| %.3g at %s%n", worst, worstAt);
    assertTrue(worst <= 1e-7, "max |erf error| " + worst + " at " + worstAt);
    assertEquals(1f, ErfPolynomial.erf(Float.POSITIVE_INFINITY));
    assertEquals(-1f, ErfPolynomial.erf(Float.NEGATIVE_INFINITY));
    assertEquals(0f, ErfPolynomial.erf(0f));
  }

  @Test
  void simdGeluGivesTheScalarBitsOnOddLengths() {
    Random rnd = TestSeed.random();
    PanamaFlashOps simd = new PanamaFlashOps();
    ScalarFlashOps scalar = new ScalarFlashOps();
    for (int n : new int[] {0, 1, 7, 15, 16, 17, 33, 100, 1001}) {
      float[] x = new float[n + 3];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (rnd.nextGaussian() * (i % 3 == 0 ? 6 : 1.5));
      }
      float[] a = x.clone();
      float[] b = x.clone();
      simd.gelu(a, 2, n);
      scalar.gelu(b, 2, n);
      for (int i = 0; i < x.length; i++) {
        float expected = i >= 2 && i < 2 + n ? ErfPolynomial.gelu(x[i]) : x[i];
        assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(a[i]),
            "simd gelu(" + x[i] + ") at " + i + " of n=" + n);
        assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(b[i]),
            "scalar gelu(" + x[i] + ") at " + i + " of n=" + n);
      }
    }
  }

  @Test
  void geluDerivativeIsWithinAFewUlpOfTheDerivativeInDouble() {
    // Φ(x) + x·φ(x) in float: erf's error (<= 1e-7 absolute, above) halves in Φ; x·φ(x) carries
    // the exp2 polynomial's few-ulp relative error on a value <= 0.25; sums round once more.
    // So |error| <= ~2.5e-7 over the whole line.
    double worst = 0;
    double worstAt = 0;
    for (double x = -12; x <= 12; x += 1e-4) {
      double exact = 0.5 * (1 + dev.mosaic.kernels.Erf.erf(x / Math.sqrt(2)))
          + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      double err = Math.abs(ErfPolynomial.geluDerivative((float) x) - exact);
      if (err > worst) {
        worst = err;
        worstAt = x;
      }
    }
    assertTrue(worst <= 2.5e-7, "max |GELU' error| " + worst + " at " + worstAt);
    assertEquals(1f, ErfPolynomial.geluDerivative(200f));
    assertTrue(Math.abs(ErfPolynomial.geluDerivative(-200f)) < 1e-30); // x·2^-126·φ-scale
  }

  @Test
  void simdGeluBackwardGivesTheScalarBitsOnOddLengths() {
    Random rnd = TestSeed.random();
    PanamaFlashOps simd = new PanamaFlashOps();
    ScalarFlashOps scalar = new ScalarFlashOps();
    for (int n : new int[] {0, 1, 7, 15, 16, 17, 33, 100, 1001}) {
      float[] x = new float[n];
      float[] dy = new float[n];
      for (int i = 0; i < n; i++) {
        x[i] = (float) (rnd.nextGaussian() * (i % 3 == 0 ? 6 : 1.5));
        dy[i] = (float) rnd.nextGaussian();
      }
      float[] a = new float[n];
      float[] b = new float[n];
      simd.geluBackward(x, dy, a, n);
      scalar.geluBackward(x, dy, b, n);
      for (int i = 0; i < n; i++) {
        float expected = dy[i] * ErfPolynomial.geluDerivative(x[i]);
        assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(a[i]),
            "simd GELU backward at x=" + x[i] + ", i=" + i + " of n=" + n);
        assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(b[i]),
            "scalar GELU backward at x=" + x[i] + ", i=" + i + " of n=" + n);
      }
    }
  }
}
