package dev.mosaic.spark.strategy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class ShardLayoutTest {
  @Test
  void contiguousCoversEveryPositionOnce() {
    ShardLayout l = ShardLayout.contiguous(10, 3);
    assertEquals(List.of(new ShardLayout.Segment(0, 3)), l.segments(0));
    assertEquals(List.of(new ShardLayout.Segment(3, 3)), l.segments(1));
    assertEquals(List.of(new ShardLayout.Segment(6, 4)), l.segments(2));
    checkCover(l);
  }

  @Test
  void zigzagGivesRankRChunksRAnd2pMinus1MinusR() {
    ShardLayout l = ShardLayout.zigzag(16, 2);
    assertEquals(List.of(new ShardLayout.Segment(0, 4), new ShardLayout.Segment(12, 4)),
        l.segments(0));
    assertEquals(List.of(new ShardLayout.Segment(4, 4), new ShardLayout.Segment(8, 4)),
        l.segments(1));
    checkCover(ShardLayout.zigzag(101, 4));
    checkCover(ShardLayout.zigzag(3, 4));
  }

  private static void checkCover(ShardLayout l) {
    int[][] owners = l.owners();
    int[] counts = new int[l.parts()];
    for (int[] o : owners) {
      counts[o[0]]++;
    }
    for (int r = 0; r < l.parts(); r++) {
      assertEquals(l.size(r), counts[r]);
    }
  }
}
