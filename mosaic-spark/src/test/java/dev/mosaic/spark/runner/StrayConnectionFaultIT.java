package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.RelativeError;
import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.faults.FaultCluster;
import dev.mosaic.spark.faults.FaultPlan;
import dev.mosaic.spark.layers.AttentionWeights;
import dev.mosaic.spark.layers.MultiAxisAttention;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A port scan during the bootstrap: while rank 0's rendezvous listener waits for its peers,
 * strangers connect to it — one that closes at once, one that sends a line of HTTP, one that
 * stays silent — ahead of rank 1, and the job still succeeds with the exact result. Rank 1 is
 * held before its rendezvous until the strays are in rank 0's accept queue, so they always come
 * first (rank 0 only accepts; higher ranks connect to lower ones).
 */
@Timeout(180)
class StrayConnectionFaultIT {
  private static final int SP = 2;
  private static FaultCluster cluster;
  private final Random rnd = new Random(20240613);

  @BeforeAll
  static void startCluster() throws Exception {
    ItSparkHome.prepare();
    cluster = FaultCluster.start("mosaic-stray-connection-fault-it", SP,
        Path.of("target", "fault-it", "stray").toAbsolutePath(),
        Map.of(MosaicConfig.COMM_TIMEOUT, "20s"));
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void strayConnectionsToAListenerDuringTheBootstrapAreIgnored() throws Exception {
    int e = 16;
    Tensor x = Tensor.randn(rnd, 1f, 2, 96, e);
    AttentionWeights w = new AttentionWeights(Tensor.randn(rnd, 0.3f, 3 * e, e),
        Tensor.randn(rnd, 0.1f, 3 * e), Tensor.randn(rnd, 0.3f, e, e), Tensor.randn(rnd, 0.1f, e));
    ShardedAttention.Spec spec = new ShardedAttention.Spec(2, 1, false, Long.MAX_VALUE, w, "ring");
    Tensor expected;
    try (MultiAxisAttention layer = MultiAxisAttention.builder(e, 2, 1).weights(w).threads(1)
        .build()) {
      expected = layer.forward(x, Long.MAX_VALUE);
    }
    MosaicContext ctx = MosaicContext.init(cluster.spark(), SP)
        .with(MosaicConfig.JOB_ATTEMPTS, "1"); // a failed bootstrap must not hide behind a re-run

    String id = cluster.plan().install(Map.of(0, FaultPlan.Action.REPORT_LISTENER,
        1, FaultPlan.Action.HOLD));
    CompletableFuture<Tensor> job = CompletableFuture.supplyAsync(
        () -> ShardedAttention.run(ctx, x, spec));
    List<Socket> strays = new ArrayList<>();
    try {
      String[] listener = cluster.plan().awaitMarker(id, "listener", 120_000).split(":(?=\\d+$)");
      InetSocketAddress at = new InetSocketAddress(listener[0].replaceAll("[\\[\\]]", ""),
          Integer.parseInt(listener[1]));
      try (Socket closesAtOnce = new Socket()) {
        closesAtOnce.connect(at, 10_000);
      }
      Socket talksHttp = new Socket();
      strays.add(talksHttp);
      talksHttp.connect(at, 10_000);
      OutputStream o = talksHttp.getOutputStream();
      o.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      o.flush();
      Socket silent = new Socket();
      strays.add(silent);
      silent.connect(at, 10_000);
      cluster.plan().writeMarker(id, "go", "strays connected to " + at);

      Tensor actual = job.get(150, TimeUnit.SECONDS);
      double rel = RelativeError.of(actual, expected);
      assertTrue(rel < 1e-5, "relative error " + rel);
    } finally {
      cluster.plan().writeMarker(id, "go", "released"); // never leave rank 1 held
      for (Socket s : strays) {
        s.close();
      }
    }
  }
}
