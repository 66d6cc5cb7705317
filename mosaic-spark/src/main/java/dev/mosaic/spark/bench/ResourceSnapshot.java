package dev.mosaic.spark.bench;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What this JVM holds that a leak would make grow: live threads, the live threads that are not
 * idle workers of a thread pool, Mosaic's own threads (named {@code mosaic-*}), open file
 * descriptors (/proc/self/fd; -1 where there is no /proc), direct buffer memory, and heap in use
 * right after a full GC.
 *
 * <p>Why "not idle in a pool": Spark runs cached thread pools (block-manager-ask-thread-pool,
 * shuffle-exchange, ... up to 100 threads each) whose workers are started when all are busy and
 * end after 60 s idle, so the live thread count follows recent activity. A thread that a leak
 * leaves behind is not waiting for pool work: it is blocked or running somewhere.
 */
public record ResourceSnapshot(int jobs, int threads, int workingThreads, int mosaicThreads,
    long openFds, long directBytes, long heapAfterGcBytes, Map<String, Integer> threadsByName) {

  /** Without the per-name thread counts (tests). */
  public ResourceSnapshot(int jobs, int threads, int workingThreads, int mosaicThreads,
      long openFds, long directBytes, long heapAfterGcBytes) {
    this(jobs, threads, workingThreads, mosaicThreads, openFds, directBytes, heapAfterGcBytes,
        Map.of());
  }

  /** Mosaic names every thread it starts with this prefix (communicator, kernel, layer pools). */
  public static final String MOSAIC_THREAD_PREFIX = "mosaic-";

  /**
   * Takes a snapshot once Mosaic's threads of the last job have ended (pools shut down at close,
   * their threads exit shortly after), waiting at most {@code settleMs} for that.
   */
  public static ResourceSnapshot take(int jobs, long settleMs) {
    long deadline = System.nanoTime() + settleMs * 1_000_000;
    while (liveMosaicThreads() > 0 && System.nanoTime() < deadline) {
      sleep(50);
    }
    // Twice: the first collection may only queue finalizable/cleanable objects (direct buffers
    // are freed by their Cleaner after the GC that found them unreachable).
    System.gc();
    sleep(100);
    System.gc();
    long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    Map<Thread, StackTraceElement[]> all = Thread.getAllStackTraces();
    int working = (int) all.entrySet().stream()
        .filter(e -> e.getKey().isAlive() && !idleInPool(e.getValue())).count();
    return new ResourceSnapshot(jobs, ManagementFactory.getThreadMXBean().getThreadCount(),
        working, liveMosaicThreads(), countOpenFds(), directBufferBytes(), heap,
        countThreadsByName());
  }

  /** A pool worker waiting for its next task (ThreadPoolExecutor or ForkJoinPool). */
  static boolean idleInPool(StackTraceElement[] stack) {
    for (StackTraceElement f : stack) {
      String c = f.getClassName();
      String m = f.getMethodName();
      if ((c.equals("java.util.concurrent.ThreadPoolExecutor") && m.equals("getTask"))
          || (c.equals("java.util.concurrent.ForkJoinPool") && m.equals("awaitWork"))) {
        return true;
      }
    }
    return false;
  }

  /** Live threads by name, digits folded to '#' so that a pool's threads count together. */
  static Map<String, Integer> countThreadsByName() {
    Map<String, Integer> byName = new TreeMap<>();
    for (Thread t : Thread.getAllStackTraces().keySet()) {
      if (t.isAlive()) {
        byName.merge(t.getName().replaceAll("\\d+", "#"), 1, Integer::sum);
      }
    }
    return byName;
  }

  static int liveMosaicThreads() {
    return (int) Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && t.getName().startsWith(MOSAIC_THREAD_PREFIX)).count();
  }

  static long countOpenFds() {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    } catch (IOException | UnsupportedOperationException e) {
      return -1;
    }
  }

  static long directBufferBytes() {
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        return pool.getMemoryUsed();
      }
    }
    return -1;
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
