package dev.mosaic.spark.comm;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/** Test helper: n ranks as threads on 127.0.0.1, connected through the real bootstrap. */
final class Cluster implements AutoCloseable {

  static final byte[] SECRET = "test-secret-0123456789".getBytes();
  private static final AtomicInteger THREADS = new AtomicInteger();

  /** What one rank runs; gets its communicator, returns a result for cross-rank checks. */
  interface RankBody<T> {
    T run(TcpCommunicator comm) throws Exception;
  }

  final List<String> addresses;
  final List<TcpCommunicator> comms;

  private Cluster(List<String> addresses, List<TcpCommunicator> comms) {
    this.addresses = addresses;
    this.comms = comms;
  }

  static Cluster start(int n, CommConfig config) throws Exception {
    return start(n, config, r -> SECRET);
  }

  /** Opens n listeners, exchanges addresses, connects all ranks in parallel. */
  static Cluster start(int n, CommConfig config, IntFunction<byte[]> secretOf) throws Exception {
    List<String> addresses = new ArrayList<>();
    return of(connectOutcomes(n, config, secretOf, addresses), addresses);
  }

  /**
   * Per rank, the communicator or the Throwable its connect threw; {@code addresses} receives the
   * published addresses.
   */
  static List<Object> connectOutcomes(int n, CommConfig config, IntFunction<byte[]> secretOf,
      List<String> addresses) throws Exception {
    return connectOutcomes(n, r -> config, secretOf, addresses, all -> { });
  }

  /**
   * The general form: each rank has its own config and secret, and {@code beforeConnect} runs
   * with the published addresses after the listeners are bound and before any rank connects (to
   * aim strays at them, say).
   */
  static List<Object> connectOutcomes(int n, IntFunction<CommConfig> configOf,
      IntFunction<byte[]> secretOf, List<String> addresses, Consumer<List<String>> beforeConnect)
      throws Exception {
    List<TcpCommunicator.Listener> listeners = new ArrayList<>();
    try {
      for (int r = 0; r < n; r++) {
        TcpCommunicator.Listener l = TcpCommunicator.listen(InetAddress.getLoopbackAddress());
        listeners.add(l);
        addresses.add(l.address());
      }
      beforeConnect.accept(List.copyOf(addresses));
      return inParallel(n, r -> TcpCommunicator.connect(
          r, List.copyOf(addresses), listeners.get(r), secretOf.apply(r), configOf.apply(r)));
    } finally {
      listeners.forEach(TcpCommunicator.Listener::close);
    }
  }

  /** A cluster from {@link #connectOutcomes}; closes what did connect if any rank failed. */
  static Cluster of(List<Object> outcomes, List<String> addresses) {
    List<TcpCommunicator> comms = new ArrayList<>();
    Throwable first = null;
    for (Object o : outcomes) {
      if (o instanceof TcpCommunicator c) {
        comms.add(c);
      } else if (first == null) {
        first = (Throwable) o;
      }
    }
    if (first != null) {
      comms.forEach(TcpCommunicator::close);
      throw new AssertionError("connect failed: " + first, first);
    }
    return new Cluster(List.copyOf(addresses), comms);
  }

  /** Runs one body per rank, each on its own thread; rethrows the first failure with its rank. */
  <T> List<T> run(RankBody<T> body) throws Exception {
    List<Object> results = inParallel(comms.size(), r -> body.run(comms.get(r)));
    List<T> out = new ArrayList<>();
    for (int r = 0; r < results.size(); r++) {
      if (results.get(r) instanceof Throwable t) {
        throw new AssertionError("rank " + r + " failed: " + t, t);
      }
      @SuppressWarnings("unchecked")
      T value = (T) results.get(r);
      out.add(value);
    }
    return out;
  }

  /** Each element is the rank's result, or the Throwable it threw. */
  static List<Object> inParallel(int n, RankFn fn) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(n, task -> {
      Thread t = new Thread(task, "test-rank-" + THREADS.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    try {
      List<Future<Object>> futures = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        int rank = r;
        futures.add(pool.submit(() -> fn.apply(rank)));
      }
      List<Object> out = new ArrayList<>();
      for (Future<Object> f : futures) {
        try {
          out.add(f.get(60, TimeUnit.SECONDS));
        } catch (ExecutionException e) {
          out.add(e.getCause());
        }
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }

  interface RankFn {
    Object apply(int rank) throws Exception;
  }

  @Override
  public void close() {
    comms.forEach(TcpCommunicator::close);
  }
}
