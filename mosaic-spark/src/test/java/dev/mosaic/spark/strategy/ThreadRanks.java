package dev.mosaic.spark.strategy;

import dev.mosaic.spark.comm.CommConfig;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.comm.TcpCommunicator;
import java.net.InetAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** Runs p ranks as threads of this JVM over real TCP communicators on the loopback. */
public final class ThreadRanks {
  private ThreadRanks() {}

  public static <T> List<T> run(int p, Function<Communicator, T> body) throws Exception {
    return run(p, CommConfig.defaults().withTimeout(Duration.ofSeconds(30)), body);
  }

  /** As above with the communicators' settings (a wire dtype, say). */
  public static <T> List<T> run(int p, CommConfig cfg, Function<Communicator, T> body)
      throws Exception {
    byte[] secret = new byte[32];
    new SecureRandom().nextBytes(secret);
    List<TcpCommunicator.Listener> listeners = new ArrayList<>();
    List<String> addresses = new ArrayList<>();
    for (int r = 0; r < p; r++) {
      TcpCommunicator.Listener l = TcpCommunicator.listen(InetAddress.getLoopbackAddress());
      listeners.add(l);
      addresses.add(l.address());
    }
    ExecutorService pool = Executors.newFixedThreadPool(p);
    try {
      List<Future<T>> futures = new ArrayList<>();
      for (int r = 0; r < p; r++) {
        int rank = r;
        futures.add(pool.submit(() -> {
          try (TcpCommunicator comm =
              TcpCommunicator.connect(rank, addresses, listeners.get(rank), secret, cfg)) {
            return body.apply(comm);
          }
        }));
      }
      List<T> out = new ArrayList<>();
      for (Future<T> f : futures) {
        out.add(f.get(120, TimeUnit.SECONDS));
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }
}
