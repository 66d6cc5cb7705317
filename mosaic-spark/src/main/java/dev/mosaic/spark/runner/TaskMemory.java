package dev.mosaic.spark.runner;

import java.lang.management.ManagementFactory;

/**
 * What a task reports about its memory: bytes its thread allocated (exact, from the JVM's
 * per-thread counters; garbage included), and the executor JVM's heap in use at the end after a
 * GC (shared by the tasks of that executor).
 */
public final class TaskMemory {
  private final long startAllocated = allocated();

  /** Bytes allocated by this thread since construction; -1 where the JVM cannot tell. */
  public long allocatedSinceStart() {
    long now = allocated();
    return now < 0 ? -1 : now - startAllocated;
  }

  private static long allocated() {
    java.lang.management.ThreadMXBean t = ManagementFactory.getThreadMXBean();
    if (t instanceof com.sun.management.ThreadMXBean sun && sun.isThreadAllocatedMemorySupported()) {
      return sun.getThreadAllocatedBytes(Thread.currentThread().getId());
    }
    return -1;
  }

  /** Peak heap use of this JVM so far (all pools' peaks summed; includes garbage). */
  public static long jvmHeapPeak() {
    long sum = 0;
    for (java.lang.management.MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
      if (p.getType() == java.lang.management.MemoryType.HEAP) {
        sum += p.getPeakUsage().getUsed();
      }
    }
    return sum;
  }
}
