package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.test.TestSeed;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The bf16 wire conversion against PyTorch's {@code .bfloat16()} and its error bound. */
class WireDtypeTest {

  static Path fixture(String file) {
    try {
      return Path.of(WireDtypeTest.class.getResource("/fixtures/wire/" + file).toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("fixture " + file + " is not on the test classpath", e);
    }
  }

  @Test
  void roundsLikePyTorchBitForBit() {
    Map<String, Tensor> t = Safetensors.read(fixture("bf16_rounding.safetensors"));
    float[] x = t.get("x").data();
    float[] expected = t.get("bf16").data();
    for (int i = 0; i < x.length; i++) {
      float got = WireDtype.BF16.round(x[i]);
      // NaN has many bit patterns; every other value must match PyTorch's bits exactly.
      boolean same = Float.isNaN(expected[i]) ? Float.isNaN(got)
          : Float.floatToRawIntBits(got) == Float.floatToRawIntBits(expected[i]);
      assertTrue(same, "x[" + i + "] = " + x[i] + " (0x" + Integer.toHexString(
          Float.floatToRawIntBits(x[i])) + "): got " + got + ", PyTorch " + expected[i]);
    }
  }

  /**
   * bf16 keeps 8 significant bits, so round to nearest even moves a normal value by at most half
   * an ulp: a relative 2^-8. The bound is reached (not 2^-9, which would hold for 8 stored bits).
   */
  @Test
  void relativeErrorIsAtMostTwoToTheMinusEightAndThatIsReached() {
    Random rnd = TestSeed.random();
    double worst = 0;
    for (int i = 0; i < 200_000; i++) {
      float x = (float) (rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 10));
      if (Math.abs(x) < Float.MIN_NORMAL || Math.abs(x) > 3.3e38f) {
        continue;
      }
      worst = Math.max(worst, Math.abs((double) WireDtype.BF16.round(x) - x) / Math.abs(x));
    }
    assertTrue(worst <= WireDtype.BF16_UNIT_ROUNDOFF, "worst relative error " + worst);
    assertTrue(worst > 0x1p-9, "worst relative error " + worst + " should exceed 2^-9");
    float tie = 1f + 0x1p-8f; // halfway between 1 and 1 + 2^-7: goes to the even one, 1
    assertEquals(1f, WireDtype.BF16.round(tie));
    assertEquals(0x1p-8 / (1 + 0x1p-8), Math.abs(WireDtype.BF16.round(tie) - tie) / tie, 1e-12);
    assertEquals(tie, WireDtype.FP32.round(tie));
  }

  @Test
  void parsesAndRejectsInOneLine() {
    assertEquals(WireDtype.BF16, WireDtype.parse(" BF16"));
    assertEquals(WireDtype.BF16, WireDtype.parse("bfloat16"));
    assertEquals(WireDtype.FP32, WireDtype.parse("float32"));
    assertEquals("wire dtype must be fp32 or bf16, got 'fp16'",
        assertThrows(IllegalArgumentException.class, () -> WireDtype.parse("fp16")).getMessage());
    assertEquals(2, WireDtype.BF16.bytes());
    assertEquals(4, WireDtype.FP32.bytes());
  }
}
