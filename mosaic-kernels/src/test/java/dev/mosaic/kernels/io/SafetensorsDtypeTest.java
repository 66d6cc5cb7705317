package dev.mosaic.kernels.io;

import static dev.mosaic.kernels.io.RawSafetensors.assertFails;
import static dev.mosaic.kernels.io.RawSafetensors.concat;
import static dev.mosaic.kernels.io.RawSafetensors.f32;
import static dev.mosaic.kernels.io.RawSafetensors.f64;
import static dev.mosaic.kernels.io.RawSafetensors.u16;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files written by hand with F16, BF16, F64 (and non-float) data; conversion to float32. */
class SafetensorsDtypeTest {
  @TempDir Path dir;

  private static void assertFloatsIdentical(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    for (int i = 0; i < expected.length; i++) {
      boolean same =
          Float.isNaN(expected[i])
              ? Float.isNaN(actual[i])
              : Float.floatToIntBits(expected[i]) == Float.floatToIntBits(actual[i]);
      if (!same) {
        throw new AssertionError("index " + i + ": expected " + expected[i] + ", got " + actual[i]);
      }
    }
  }

  @Test
  void f16SpecialValues() throws IOException {
    int[] bits = {
      0x0000, // +0
      0x8000, // -0
      0x3c00, // 1
      0xc000, // -2
      0x3555, // 0.333251953125
      0x0001, // smallest subnormal 2^-24
      0x8001, // -2^-24
      0x03ff, // largest subnormal 1023 * 2^-24
      0x0400, // smallest normal 2^-14
      0x7bff, // max 65504
      0xfbff, // -65504
      0x7c00, // +inf
      0xfc00, // -inf
      0x7e00, // NaN
      0xfe01, // NaN with sign and payload
      0x7c01, // signalling NaN
    };
    float[] expected = {
      0f,
      -0f,
      1f,
      -2f,
      0.333251953125f,
      5.9604645e-8f,
      -5.9604645e-8f,
      1023 * 5.9604645e-8f,
      6.1035156e-5f,
      65504f,
      -65504f,
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      Float.NaN,
      Float.NaN,
      Float.NaN,
    };
    Path f =
        RawSafetensors.write(
            dir.resolve("f16.safetensors"),
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[4,4],\"data_offsets\":[0,32]}}",
            u16(bits));
    Tensor t = Safetensors.read(f, "h");
    assertArrayEquals(new int[] {4, 4}, t.shape());
    assertFloatsIdentical(expected, t.data());
    assertEquals(0x80000000, Float.floatToRawIntBits(t.data()[1]), "-0 keeps its sign");
    assertEquals(Math.scalb(1.0f, -24), t.data()[5]);
    assertEquals(1023 * Math.scalb(1.0f, -24), t.data()[7]);
    assertEquals(Math.scalb(1.0f, -14), t.data()[8]);
  }

  /** Every one of the 65536 half values against the definition of binary16, in double. */
  @Test
  void f16AllBitPatterns() throws IOException {
    int[] bits = new int[65536];
    float[] expected = new float[65536];
    for (int b = 0; b < 65536; b++) {
      bits[b] = b;
      int sign = b >>> 15;
      int exp = (b >>> 10) & 0x1f;
      int mant = b & 0x3ff;
      double v;
      if (exp == 31) {
        v = mant == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
      } else if (exp == 0) {
        v = mant / 1024.0 * Math.pow(2, -14);
      } else {
        v = (1 + mant / 1024.0) * Math.pow(2, exp - 15);
      }
      expected[b] = (float) (sign == 1 ? -v : v);
    }
    Path f =
        RawSafetensors.write(
            dir.resolve("f16all.safetensors"),
            "{\"all\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}",
            u16(bits));
    assertFloatsIdentical(expected, Safetensors.read(f, "all").data());
    float[] direct = new float[65536];
    for (int b = 0; b < 65536; b++) {
      direct[b] = Safetensors.halfToFloat((short) b);
    }
    assertFloatsIdentical(expected, direct);
  }

  @Test
  void bf16IsTheUpperHalfOfFloat32() throws IOException {
    int[] bits = {0x3f80, 0xc000, 0x4049, 0x8000, 0x0001, 0x7f80, 0xff80, 0x7fc0, 0x7f7f, 0x3e80};
    float[] expected = {
      1f,
      -2f,
      3.140625f,
      -0f,
      9.18355e-41f, // 2^-133, the smallest bf16 subnormal
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      Float.NaN,
      3.3895314e38f, // largest finite bf16
      0.25f,
    };
    // Plus random floats, truncated to their upper 16 bits.
    Random rnd = dev.mosaic.test.TestSeed.random();
    int extra = 100;
    int[] all = new int[bits.length + extra];
    float[] allExpected = new float[bits.length + extra];
    System.arraycopy(bits, 0, all, 0, bits.length);
    System.arraycopy(expected, 0, allExpected, 0, bits.length);
    for (int i = 0; i < extra; i++) {
      float x = (float) rnd.nextGaussian() * 100;
      int fb = Float.floatToIntBits(x);
      all[bits.length + i] = fb >>> 16;
      allExpected[bits.length + i] = Float.intBitsToFloat(fb & 0xffff0000);
    }
    Path f =
        RawSafetensors.write(
            dir.resolve("bf16.safetensors"),
            "{\"b\":{\"dtype\":\"BF16\",\"shape\":[" + all.length + "],\"data_offsets\":[0,"
                + 2 * all.length + "]}}",
            u16(all));
    float[] got = Safetensors.read(f, "b").data();
    assertFloatsIdentical(allExpected, got);
    assertEquals(Math.scalb(1.0f, -133), got[4]);
    assertEquals(0x80000000, Float.floatToRawIntBits(got[3]));
  }

  @Test
  void f64IsRoundedToNearestFloat() throws IOException {
    double[] in = {
      1.0, -2.5, Math.PI, 1e300, -1e300, 1e-50, -1e-50, Double.NaN, -0.0,
      Double.POSITIVE_INFINITY, 0.1, 16777217.0, Double.MIN_VALUE, 3.4028235e38 /* below the halfway point to inf */
    };
    float[] expected = {
      1f, -2.5f, 3.1415927f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, Float.NaN,
      -0f, Float.POSITIVE_INFINITY, 0.1f, 16777216f, 0f, Float.MAX_VALUE
    };
    Path f =
        RawSafetensors.write(
            dir.resolve("f64.safetensors"),
            "{\"d\":{\"dtype\":\"F64\",\"shape\":[2,7],\"data_offsets\":[0,112]}}",
            f64(in));
    Tensor t = Safetensors.read(f, "d");
    assertArrayEquals(new int[] {2, 7}, t.shape());
    assertFloatsIdentical(expected, t.data());
  }

  @Test
  void mixedDtypesInOneFileReadInOffsetOrder() throws IOException {
    // Header order differs from offset order; padded with spaces; metadata in the middle.
    String header =
        "{\"c\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[12,20]},"
            + "\"__metadata__\":{\"format\":\"pt\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"z\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[8,10]},"
            + "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[10,12]}}     ";
    byte[] data = concat(f32(1.5f, -3f), u16(0x4040), u16(0x3800), f64(-0.125));
    Path f = RawSafetensors.write(dir.resolve("mixed.safetensors"), header, data);
    Map<String, Tensor> all = Safetensors.read(f);
    assertEquals(List.of("a", "z", "b", "h", "c"), List.copyOf(all.keySet()));
    assertArrayEquals(new float[] {1.5f, -3f}, all.get("a").data());
    assertArrayEquals(new int[] {0, 3}, all.get("z").shape());
    assertEquals(0, all.get("b").rank());
    assertArrayEquals(new float[] {3f}, all.get("b").data());
    assertArrayEquals(new float[] {0.5f}, all.get("h").data());
    assertArrayEquals(new float[] {-0.125f}, all.get("c").data());
    assertEquals(Map.of("format", "pt"), Safetensors.metadata(f));
  }

  @Test
  void nonFloatDtypesAreRefusedByNameButOtherTensorsStayReadable() throws IOException {
    String header =
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[4,12]},"
            + "\"q\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[12,15]},"
            + "\"x\":{\"dtype\":\"WEIRD\",\"shape\":[5],\"data_offsets\":[15,16]}}";
    byte[] data = concat(f32(2f), f32(0f, 0f), new byte[] {1, 2, 3, 4});
    Path f = RawSafetensors.write(dir.resolve("ints.safetensors"), header, data);
    assertFails(f, "ids", () -> Safetensors.read(f), "unsupported dtype I32", "F32, F16, BF16");
    assertFails(f, "q", () -> Safetensors.read(f, "q"), "unsupported dtype I8");
    assertFails(f, "x", () -> Safetensors.read(f, "x"), "unknown dtype WEIRD");
    assertArrayEquals(new float[] {2f}, Safetensors.read(f, "w").data());
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      assertEquals(SafetensorsDtype.I32, sf.entry("ids").knownDtype());
      assertEquals(null, sf.entry("x").knownDtype());
    }
  }

  @Test
  void knownNonFloatDtypesStillHaveTheirSizesChecked() throws IOException {
    Path f =
        RawSafetensors.write(
            dir.resolve("i64size.safetensors"),
            "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}",
            new byte[8]);
    assertFails(f, "ids", () -> Safetensors.read(f, "ids"), "size mismatch", "needs 16 bytes");
  }
}
