package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.DeviceArena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** NCCL ranks as threads of this JVM on one {@link FakeCuda}, started as the real ones are. */
final class FakeRanks {
  static final Duration TIMEOUT = Duration.ofSeconds(60);

  interface Body {
    void run(NcclCommunicator comm) throws Exception;
  }

  private FakeRanks() {}

  /** Starts {@code p} ranks, runs {@code body} on each, closes them; returns the fake to inspect. */
  static FakeCuda run(int p, Body body) throws Exception {
    return run(new FakeCuda(), p, body);
  }

  static FakeCuda run(FakeCuda cuda, int p, Body body) throws Exception {
    byte[] id = cuda.ncclUniqueId();
    ExecutorService pool = Executors.newFixedThreadPool(p);
    try {
      List<Future<?>> fs = new ArrayList<>();
      for (int r = 0; r < p; r++) {
        int rank = r;
        fs.add(pool.submit(() -> {
          try (NcclCommunicator comm = NcclCommunicator.start(cuda, rank, p, rank, id,
              (DeviceArena) null, TIMEOUT)) {
            body.run(comm);
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get(TIMEOUT.toSeconds() * 2, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    return cuda;
  }
}
