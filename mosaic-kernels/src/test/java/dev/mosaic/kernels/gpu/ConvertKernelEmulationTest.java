package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.test.TestSeed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * convert.cu in the host emulation: fp32 rounded to fp16 / bf16 on the "device" must give the
 * same bits as the host conversion it replaces ({@link GpuDtype#floatToHalf},
 * {@link GpuDtype#floatToBf16}, checked on known values and round trips in
 * {@code GpuDtypeTest}), for random values, ties, subnormals, overflow, infinities and NaN,
 * with the grid-stride loop walking more elements than the grid has threads.
 */
class ConvertKernelEmulationTest {
  private static final Random SEEDS = TestSeed.random();
  private static HostEmulation emulation;

  @BeforeAll
  static void build() throws Exception {
    emulation = HostEmulation.buildOrSkip();
  }

  /** Random values over many binades, then the edge cases of both 16-bit types. */
  private static float[] inputs(int n) {
    Random rnd = new Random(SEEDS.nextLong());
    float[] special = {0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 1e6f, -1e6f, 0x1p-14f,
        0x1p-24f, 0x1p-25f, 0x1.8p-25f, 3e-8f, 1e-40f, Float.MIN_VALUE, Float.MAX_VALUE,
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
        Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0xffc00001),
        1f + 0x1p-11f, 1f + 0x3p-11f, 1f + 0x1p-8f, 1f + 0x3p-8f, // fp16 / bf16 ties to even
        Float.intBitsToFloat(0x3f808000), Float.intBitsToFloat(0x3f818000)};
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = i < special.length ? special[i]
          : (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(60) - 30));
    }
    return x;
  }

  @Test
  void roundsBitForBitLikeTheHost() throws Exception {
    // 3 blocks of 256 threads walking 2 strides and a partial third: the grid-stride loop.
    int n = 3 * ConvertLaunch.THREADS * 2 + 37;
    float[] x = inputs(n);
    for (GpuDtype to : new GpuDtype[] {GpuDtype.FP16, GpuDtype.BF16}) {
      short[] actual = run(to, x, 3);
      for (int i = 0; i < n; i++) {
        short expected = to == GpuDtype.FP16 ? GpuDtype.floatToHalf(x[i])
            : GpuDtype.floatToBf16(x[i]);
        if (actual[i] != expected) {
          assertEquals(Integer.toHexString(expected & 0xffff),
              Integer.toHexString(actual[i] & 0xffff), to + " of " + x[i] + " (element " + i
                  + ", bits " + Integer.toHexString(Float.floatToRawIntBits(x[i])) + ")");
        }
      }
    }
  }

  @Test
  void writesOnlyTheFirstNElements() throws Exception {
    float[] x = inputs(300);
    short[] out = run(GpuDtype.BF16, x, ConvertLaunch.blocks(0), 0);
    for (short s : out) {
      assertEquals((short) 0x7fc0, s, "n = 0 must write nothing");
    }
  }

  @Test
  void launchGeometry() {
    assertEquals("mosaic_convert_f32_to_f16", ConvertLaunch.kernelName(GpuDtype.FP16));
    assertEquals("mosaic_convert_f32_to_bf16", ConvertLaunch.kernelName(GpuDtype.BF16));
    assertThrows(IllegalArgumentException.class, () -> ConvertLaunch.kernelName(GpuDtype.FP32));
    assertEquals(1, ConvertLaunch.blocks(0));
    assertEquals(1, ConvertLaunch.blocks(256));
    assertEquals(2, ConvertLaunch.blocks(257));
    assertEquals(ConvertLaunch.MAX_BLOCKS, ConvertLaunch.blocks(1L << 40));
    assertThrows(IllegalArgumentException.class, () -> ConvertLaunch.blocks(-1));
  }

  private static short[] run(GpuDtype to, float[] x, int blocks) throws Exception {
    return run(to, x, blocks, x.length);
  }

  /** Converts the first {@code n} of {@code x} into a destination prefilled with a bf16 NaN. */
  private static short[] run(GpuDtype to, float[] x, int blocks, int n) throws Exception {
    ByteBuffer dst = ByteBuffer.allocate(2 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < x.length; i++) {
      dst.putShort((short) 0x7fc0);
    }
    dst.flip();
    List<ByteBuffer> out = emulation.run(ConvertLaunch.kernelName(to), blocks, 1, 1,
        ConvertLaunch.THREADS, 0, ConvertLaunch.arguments(0, 1, n),
        List.of(HostEmulation.floats(x), dst));
    ShortBuffer s = out.get(1).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    short[] r = new short[x.length];
    s.get(r);
    return r;
  }
}
