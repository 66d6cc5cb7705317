package dev.mosaic.spark.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.TestSpark;
import dev.mosaic.spark.strategy.Backends;
import dev.mosaic.spark.strategy.RingStrategy;
import dev.mosaic.spark.strategy.ShardLayout;
import dev.mosaic.spark.strategy.StrategySpec;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code bench ring --backward} on a tiny problem: it runs, counts the right bytes, prints. */
@Timeout(600) // generous: the first Spark session of a loaded machine can take minutes
class StrategyBenchmarkBackwardTest {

  @Test
  void ringBackwardBenchmarkReportsEfficiencyAndTheBackwardTraffic() {
    int tokens = 301;
    int heads = 2;
    int d = 16;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
    StrategyBenchmark.Result r = StrategyBenchmark.run(MosaicContext.init(TestSpark.get(), 2),
        StrategySpec.of(Backends.RING), tokens, heads, d, true, 1, true, true, out);
    StrategyBenchmark.print(r, out);

    assertTrue(r.backward());
    assertTrue(r.ringSeconds() > 0 && r.localSeconds() > 0, r.toString());
    assertEquals(2.5 * 4.0 * tokens * tokens * d * heads * 0.5, r.flops(), 1e-6);
    ShardLayout layout = ShardLayout.zigzag(tokens, 2);
    for (StrategyBenchmark.RankResult rank : r.ranks()) {
      assertEquals(RingStrategy.backwardBytesSent(layout, rank.rank(), 1, heads, d),
          rank.bytesSentPerRun(), "bytes rank " + rank.rank() + " sent per call");
      assertEquals(RingStrategy.backwardWorkingSetBytes(layout, rank.rank(), 1, heads, d),
          rank.workingSetBytes());
    }
    String printed = buf.toString(StandardCharsets.UTF_8);
    assertTrue(printed.contains("ring backward: 301 tokens") && printed.contains("| ring backward"
        + " | 301 | 2 x 16 | yes | 2 |"), printed);
  }
}
