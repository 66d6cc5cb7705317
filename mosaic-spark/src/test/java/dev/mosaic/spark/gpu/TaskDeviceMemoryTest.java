package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.gpu.DeviceAllocator;
import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.kernels.gpu.Gpu;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class TaskDeviceMemoryTest {

  static final class Fake implements DeviceAllocator {
    final Set<Long> live = new HashSet<>();
    long next = 1;

    @Override
    public long allocate(long bytes) {
      live.add(next);
      return next++;
    }

    @Override
    public void free(long address) {
      live.remove(address);
    }
  }

  @Test
  void theArenaIsFreedWhenTheTaskEndsEvenAfterAFailure() {
    Fake fake = new Fake();
    List<Runnable> taskEndHooks = new ArrayList<>();
    DeviceArena arena = TaskDeviceMemory.attach(new DeviceArena(fake, "task 1"),
        taskEndHooks::add);
    arena.reserve("kv", 1 << 20);
    arena.allocate(100);
    try {
      throw new IllegalStateException("a ring step failed");
    } catch (IllegalStateException e) {
      // Spark runs completion listeners for failed tasks too.
      taskEndHooks.forEach(Runnable::run);
    }
    assertTrue(fake.live.isEmpty());
    assertTrue(arena.isClosed());
    taskEndHooks.forEach(Runnable::run); // a second call is harmless
  }

  @Test
  void outsideATaskItSaysSo() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> TaskDeviceMemory.forCurrentTask(0));
    assertEquals("TaskDeviceMemory.forCurrentTask needs a Spark task thread", e.getMessage());
    assertEquals(0, TaskDeviceMemory.open());
  }

  @Test
  void withoutAGpuTheAllocatorExplains() {
    Assumptions.assumeFalse(Gpu.available(), "this machine has a GPU");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> Gpu.allocator(0));
    assertTrue(e.getMessage().startsWith("no usable GPU: "), e.getMessage());
    assertFalse(Gpu.unavailableReason().isEmpty());
  }

  static final java.util.Queue<DeviceArena> SPARK_ARENAS =
      new java.util.concurrent.ConcurrentLinkedQueue<>();

  @Test
  void aFailingSparkTaskFreesWhatItRegistered() {
    org.apache.spark.api.java.JavaSparkContext jsc = org.apache.spark.api.java.JavaSparkContext
        .fromSparkContext(dev.mosaic.spark.runner.TestSpark.get().sparkContext());
    SPARK_ARENAS.clear();
    assertThrows(Exception.class, () -> jsc.parallelize(List.of(1), 1).foreach(x -> {
      DeviceArena arena = TaskDeviceMemory.closeAtTaskEnd(new DeviceArena(new Fake(), "task"));
      arena.allocate(100);
      SPARK_ARENAS.add(arena);
      throw new IllegalStateException("the kernel failed before anyone closed its memory");
    }));
    assertFalse(SPARK_ARENAS.isEmpty());
    for (DeviceArena a : SPARK_ARENAS) {
      assertTrue(a.isClosed(), "Spark's task-end hook closed it");
      assertEquals(0, a.liveAllocations());
    }
    DeviceArena outside = TaskDeviceMemory.closeAtTaskEnd(new DeviceArena(new Fake(), "driver"));
    assertFalse(outside.isClosed(), "outside a task nothing is registered");
    outside.close();
  }
}
