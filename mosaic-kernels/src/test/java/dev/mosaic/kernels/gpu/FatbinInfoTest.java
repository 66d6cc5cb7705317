package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

class FatbinInfoTest {

  /** A fatbin as nvcc lays it out: 16-byte header, then entries of (64-byte header, payload). */
  static byte[] fatbin(int[][] entries) {
    int body = 0;
    for (int[] e : entries) {
      body += 64 + e[2];
    }
    ByteBuffer b = ByteBuffer.allocate(16 + body).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(FatbinInfo.MAGIC).putShort((short) 1).putShort((short) 16).putLong(body);
    for (int[] e : entries) { // kind, arch, payload bytes
      int at = b.position();
      b.putShort((short) e[0]).putShort((short) 0x101).putInt(64).putLong(e[2]);
      b.putInt(at + 28, e[1]);
      b.position(at + 64 + e[2]);
    }
    return b.array();
  }

  @Test
  void readsKindsAndArchitectures() {
    FatbinInfo info = FatbinInfo.parse(fatbin(new int[][] {{2, 80, 100}, {1, 90, 40},
        {2, 90, 120}}));
    assertEquals(3, info.entries().size());
    assertEquals(List.of(80, 90), info.sassArchs());
    assertEquals(List.of(90), info.ptxArchs());
    assertEquals("sm_80, sm_90 SASS + compute_90 PTX", info.describe());
    assertEquals(new FatbinInfo.Entry(FatbinInfo.Kind.PTX, 90, 40), info.entries().get(1));
  }

  @Test
  void knowsWhichGpusItRunsOn() {
    FatbinInfo sassOnly = FatbinInfo.parse(fatbin(new int[][] {{2, 80, 8}}));
    assertTrue(sassOnly.runsOn(80));
    assertTrue(sassOnly.runsOn(89)); // same major, newer minor
    assertFalse(sassOnly.runsOn(90)); // SASS does not cross majors
    assertFalse(sassOnly.runsOn(75));
    FatbinInfo withPtx = FatbinInfo.parse(fatbin(new int[][] {{2, 80, 8}, {1, 90, 8}}));
    assertTrue(withPtx.runsOn(120)); // PTX JIT on newer GPUs
  }

  @Test
  void rejectsWhatIsNotAFatbin() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FatbinInfo.parse("\u007fELF and some more bytes".getBytes()));
    assertTrue(e.getMessage().startsWith("not a fatbin: magic 0x"), e.getMessage());
    byte[] truncated = fatbin(new int[][] {{2, 80, 100}});
    byte[] cut = java.util.Arrays.copyOf(truncated, truncated.length - 10);
    e = assertThrows(IllegalArgumentException.class, () -> FatbinInfo.parse(cut));
    assertTrue(e.getMessage().contains("file has"), e.getMessage());
  }
}
