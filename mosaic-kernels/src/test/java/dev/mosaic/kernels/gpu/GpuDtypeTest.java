package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class GpuDtypeTest {

  @Test
  void halfKnownValues() {
    assertEquals((short) 0x3c00, GpuDtype.floatToHalf(1f));
    assertEquals((short) 0xc000, GpuDtype.floatToHalf(-2f));
    assertEquals((short) 0x7bff, GpuDtype.floatToHalf(65504f)); // largest finite
    assertEquals((short) 0x7c00, GpuDtype.floatToHalf(65520f)); // rounds up to infinity
    assertEquals((short) 0x7bff, GpuDtype.floatToHalf(65519f));
    assertEquals((short) 0x0001, GpuDtype.floatToHalf(0x1p-24f)); // smallest subnormal
    assertEquals((short) 0x0000, GpuDtype.floatToHalf(0x1p-25f)); // tie: to even (0)
    assertEquals((short) 0x0002, GpuDtype.floatToHalf(0x1.8p-24f)); // tie: to even (2)
    assertEquals((short) 0x0400, GpuDtype.floatToHalf(0x1p-14f)); // smallest normal
    assertEquals((short) 0x8000, GpuDtype.floatToHalf(-0f));
    assertEquals((short) 0xfc00, GpuDtype.floatToHalf(Float.NEGATIVE_INFINITY));
    assertTrue(Float.isNaN(GpuDtype.halfToFloat(GpuDtype.floatToHalf(Float.NaN))));
  }

  @Test
  void everyHalfSurvivesARoundTrip() {
    for (int h = 0; h < 0x10000; h++) {
      float f = GpuDtype.halfToFloat((short) h);
      if (!Float.isNaN(f)) {
        assertEquals((short) h, GpuDtype.floatToHalf(f), "half 0x" + Integer.toHexString(h));
      }
    }
  }

  @Test
  void everyBf16SurvivesARoundTrip() {
    for (int h = 0; h < 0x10000; h++) {
      float f = GpuDtype.bf16ToFloat((short) h);
      if (!Float.isNaN(f)) {
        assertEquals((short) h, GpuDtype.floatToBf16(f), "bf16 0x" + Integer.toHexString(h));
      }
    }
  }

  @Test
  void conversionsRoundToTheNearestRepresentable() {
    Random rnd = new Random(42);
    for (int i = 0; i < 200_000; i++) {
      float x = Float.intBitsToFloat(rnd.nextInt());
      if (Float.isNaN(x) || Float.isInfinite(x)) {
        continue;
      }
      if (Math.abs(x) < 3.38e38f) { // beyond, IEEE rounds to infinity: not "nearest"
        checkNearest(x, GpuDtype.floatToBf16(x), true);
      }
      if (Math.abs(x) < 65504f) {
        checkNearest(x, GpuDtype.floatToHalf(x), false);
      }
    }
  }

  private static void checkNearest(float x, short bits, boolean bf16) {
    double got = bf16 ? GpuDtype.bf16ToFloat(bits) : GpuDtype.halfToFloat(bits);
    double err = Math.abs(got - x);
    for (int delta : new int[] {-1, 1}) {
      short n = (short) (bits + delta);
      double other = bf16 ? GpuDtype.bf16ToFloat(n) : GpuDtype.halfToFloat(n);
      if (!Double.isNaN(other) && !Double.isInfinite(other)) {
        assertTrue(err <= Math.abs(other - x), (bf16 ? "bf16" : "half") + " of " + x + " is "
            + got + " but " + other + " is nearer");
      }
    }
  }

  @Test
  void bf16KeepsTheTopBitsRoundedToEven() {
    assertEquals((short) 0x3f80, GpuDtype.floatToBf16(1f));
    assertEquals((short) 0x3f80, GpuDtype.floatToBf16(Float.intBitsToFloat(0x3f808000))); // tie
    assertEquals((short) 0x3f82, GpuDtype.floatToBf16(Float.intBitsToFloat(0x3f818000))); // tie
    assertEquals((short) 0x3f81, GpuDtype.floatToBf16(Float.intBitsToFloat(0x3f808001)));
    assertTrue(Float.isNaN(GpuDtype.bf16ToFloat(GpuDtype.floatToBf16(Float.NaN))));
  }

  @Test
  void parsesNames() {
    assertEquals(GpuDtype.BF16, GpuDtype.parse("bfloat16"));
    assertEquals(GpuDtype.FP16, GpuDtype.parse("FP16"));
    assertEquals(GpuDtype.FP32, GpuDtype.parse("f32"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GpuDtype.parse("int8"));
    assertEquals("unknown GPU dtype 'int8'; expected fp32, fp16 or bf16", e.getMessage());
  }
}
