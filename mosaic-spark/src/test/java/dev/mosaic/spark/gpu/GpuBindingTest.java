package dev.mosaic.spark.gpu;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.gpu.GpuBinding.Binding;
import dev.mosaic.spark.gpu.GpuBinding.TaskGpu;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class GpuBindingTest {
  private static final Map<String, String> NO_ENV = Map.of("PATH", "/usr/bin");

  @Test
  void sparkAddressIsTheOrdinalWhenNothingIsHidden() {
    Binding b = GpuBinding.resolve(NO_ENV, List.of("3"), 0);
    assertEquals(3, b.ordinal());
    assertEquals("3", b.gpuId());
    Binding two = GpuBinding.resolve(NO_ENV, List.of("1", "2"), 0);
    assertEquals(1, two.ordinal());
    assertTrue(two.source().contains("using the first"), two.source());
  }

  @Test
  void cudaVisibleDevicesWithOneGpuIsOrdinalZero() {
    Binding b = GpuBinding.resolve(Map.of("CUDA_VISIBLE_DEVICES", "5"), List.of(), 0);
    assertEquals(new Binding(0, "5", "CUDA_VISIBLE_DEVICES=5"), b);
    // A container that sees one GPU while Spark names it by the host's numbering.
    Binding c = GpuBinding.resolve(Map.of("CUDA_VISIBLE_DEVICES", "GPU-8f2c"), List.of("2"), 0);
    assertEquals(0, c.ordinal());
    assertEquals("GPU-8f2c", c.gpuId());
  }

  @Test
  void sparkAddressIsLookedUpInCudaVisibleDevices() {
    Binding b = GpuBinding.resolve(Map.of("CUDA_VISIBLE_DEVICES", "4, 6,7"), List.of("7"), 0);
    assertEquals(2, b.ordinal());
    assertEquals("7", b.gpuId());
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> GpuBinding.resolve(Map.of("CUDA_VISIBLE_DEVICES", "4,6"), List.of("7"), 0));
    assertEquals("Spark assigned GPU 7 to this task but CUDA_VISIBLE_DEVICES=4,6 does not list it",
        e.getMessage());
  }

  @Test
  void severalVisibleAndNoneAssignedPicksByIndexOnTheHost() {
    Map<String, String> env = Map.of("CUDA_VISIBLE_DEVICES", "0,1,2,3");
    List<String> hosts = List.of("a", "b", "a", "a", "b");
    assertEquals(2, GpuBinding.localIndex(hosts, 3));
    assertEquals(1, GpuBinding.localIndex(hosts, 4));
    Binding b = GpuBinding.resolve(env, List.of(), GpuBinding.localIndex(hosts, 3));
    assertEquals(2, b.ordinal());
    assertEquals("2", b.gpuId());
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> GpuBinding.resolve(Map.of("CUDA_VISIBLE_DEVICES", "0,1"), List.of(), 2));
    assertTrue(e.getMessage().startsWith("task 2 on this host has no GPU"), e.getMessage());
  }

  @Test
  void explainsWhenThereIsNoGpu() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> GpuBinding.resolve(NO_ENV, List.of(), 0));
    assertTrue(e.getMessage().startsWith("this task has no GPU: Spark assigned none"),
        e.getMessage());
    assertTrue(e.getMessage().contains("spark.task.resource.gpu.amount=1"), e.getMessage());
    e = assertThrows(IllegalStateException.class,
        () -> GpuBinding.resolve(Map.of("CUDA_VISIBLE_DEVICES", ""), List.of("0"), 0));
    assertEquals("CUDA_VISIBLE_DEVICES='' hides every GPU from this task", e.getMessage());
    e = assertThrows(IllegalStateException.class,
        () -> GpuBinding.resolve(NO_ENV, List.of("GPU-1234"), 0));
    assertTrue(e.getMessage().contains("not a device index"), e.getMessage());
  }

  @Test
  void refusesTwoRanksOnOneGpuNamingBothTasks() {
    List<TaskGpu> tasks = List.of(
        new TaskGpu(0, "stage 4 partition 0 attempt 0", "node1", "0"),
        new TaskGpu(1, "stage 4 partition 1 attempt 0", "node1", "1"),
        new TaskGpu(2, "stage 4 partition 2 attempt 0", "node2", "0"),
        new TaskGpu(3, "stage 4 partition 3 attempt 0", "node1", "1"));
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> GpuBinding.checkDistinct(tasks));
    assertTrue(e.getMessage().startsWith("rank 1 (stage 4 partition 1 attempt 0) and rank 3"
        + " (stage 4 partition 3 attempt 0) are both bound to GPU 1 on host node1."),
        e.getMessage());
    assertTrue(e.getMessage().contains("spark.task.resource.gpu.amount=1"), e.getMessage());
    // The same GPU number on different hosts is fine.
    assertDoesNotThrow(() -> GpuBinding.checkDistinct(tasks.subList(0, 3)));
  }
}
