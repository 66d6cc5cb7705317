package dev.mosaic.spark.bench;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * What this JVM holds that a leak would make grow: live threads (and Mosaic's own, named
 * {@code mosaic-*}), open file descriptors (/proc/self/fd; -1 where there is no /proc), direct
 * buffer memory, and heap in use right after a full GC.
 */
public record ResourceSnapshot(int jobs, int threads, int mosaicThreads, long openFds,
    long directBytes, long heapAfterGcBytes) {

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
    return new ResourceSnapshot(jobs, ManagementFactory.getThreadMXBean().getThreadCount(),
        liveMosaicThreads(), countOpenFds(), directBufferBytes(), heap);
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
