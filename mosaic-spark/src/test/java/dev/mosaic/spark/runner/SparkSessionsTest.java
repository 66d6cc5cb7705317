package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SparkSessionsTest {
  private static final String SYNC = "spark.barrier.sync.timeout";

  @Test
  void theBarrierSyncTimeoutFollowsTheCommTimeout() {
    Map<String, String> conf = new HashMap<>();
    SparkSessions.boundBarrierSync(conf);
    assertEquals("120s", conf.get(SYNC), "the comm timeout's default");

    conf = new HashMap<>(Map.of(MosaicConfig.COMM_TIMEOUT, "15s"));
    SparkSessions.boundBarrierSync(conf);
    assertEquals("15s", conf.get(SYNC));

    conf = new HashMap<>(Map.of(MosaicConfig.COMM_TIMEOUT, "1500ms"));
    SparkSessions.boundBarrierSync(conf);
    assertEquals("2s", conf.get(SYNC), "Spark counts whole seconds: rounded up");
  }

  @Test
  void theUsersBarrierSyncTimeoutWins() {
    Map<String, String> conf = new HashMap<>(Map.of(SYNC, "10min",
        MosaicConfig.COMM_TIMEOUT, "15s"));
    SparkSessions.boundBarrierSync(conf);
    assertEquals("10min", conf.get(SYNC));
  }

  @Test
  void aBadCommTimeoutIsNamed() {
    Map<String, String> conf = new HashMap<>(Map.of(MosaicConfig.COMM_TIMEOUT, "soon"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SparkSessions.boundBarrierSync(conf));
    assertTrue(e.getMessage().startsWith(MosaicConfig.COMM_TIMEOUT), e.getMessage());
  }
}
