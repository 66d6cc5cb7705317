package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.test.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

class NcclIdsTest {

  @Test
  void roundTripsRandomIds() {
    Random rnd = TestSeed.random();
    for (int i = 0; i < 100; i++) {
      byte[] id = new byte[NcclIds.BYTES];
      rnd.nextBytes(id);
      String text = NcclIds.encode(id);
      assertEquals(172, text.length());
      assertArrayEquals(id, NcclIds.decode(text));
      assertArrayEquals(id, NcclIds.decode(" " + text + "\n")); // whitespace around is fine
    }
    byte[] zeros = new byte[NcclIds.BYTES];
    assertArrayEquals(zeros, NcclIds.decode(NcclIds.encode(zeros)));
  }

  @Test
  void rejectsWrongSizesAndText() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> NcclIds.encode(new byte[127]));
    assertEquals("an NCCL unique id has 128 bytes, got 127", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> NcclIds.decode(NcclIds.encode(new byte[128]).substring(4)));
    assertEquals("the NCCL unique id from rank 0 has 125 bytes, expected 128", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> NcclIds.decode("not*base64"));
    assertEquals(true, e.getMessage().startsWith("the NCCL unique id from rank 0 is not base64"));
    e = assertThrows(IllegalArgumentException.class, () -> NcclIds.decode(""));
    assertEquals("no NCCL unique id: rank 0 sent none", e.getMessage());
  }
}
