package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.kernels.gpu.Gpu;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.apache.spark.TaskContext;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Device memory scoped to a Spark task: one {@link DeviceArena} per task attempt and device,
 * closed by a task completion listener, which Spark runs when the task ends whether it succeeded,
 * failed or was killed. So a failing ring step does not leak GPU memory into the executor's next
 * task.
 */
public final class TaskDeviceMemory {
  private static final Map<String, DeviceArena> ARENAS = new ConcurrentHashMap<>();

  private TaskDeviceMemory() {}

  /**
   * The arena of the running task on visible device {@code device}, created on first use. Must be
   * called from a task thread; throws when no GPU is usable, with the reason.
   */
  public static DeviceArena forCurrentTask(int device) {
    TaskContext ctx = TaskContext.get();
    if (ctx == null) {
      throw new IllegalStateException("TaskDeviceMemory.forCurrentTask needs a Spark task thread");
    }
    String key = ctx.taskAttemptId() + "/" + device;
    DeviceArena existing = ARENAS.get(key);
    if (existing != null) {
      return existing;
    }
    String owner = "task " + ctx.taskAttemptId() + " (stage " + ctx.stageId() + ", partition "
        + ctx.partitionId() + ", attempt " + ctx.attemptNumber() + ") on GPU " + device;
    DeviceArena arena = new DeviceArena(Gpu.allocator(device), owner);
    ARENAS.put(key, arena);
    // A listener added after the task ended runs at once: the arena is closed straight away.
    return attach(arena, closer -> ctx.addTaskCompletionListener(
        (TaskCompletionListener) done -> {
          ARENAS.remove(key, arena);
          closer.run();
        }));
  }

  /**
   * Closes {@code arena} when the running Spark task ends (success, failure or kill), in case its
   * owner does not get to; outside a task, does nothing. Returns the arena.
   */
  public static DeviceArena closeAtTaskEnd(DeviceArena arena) {
    TaskContext ctx = TaskContext.get();
    if (ctx == null || arena == null) {
      return arena;
    }
    return attach(arena, closer -> ctx.addTaskCompletionListener(
        (TaskCompletionListener) done -> closer.run()));
  }

  /**
   * Registers {@code arena.close()} with a task-end hook and returns the arena. Spark's hook is
   * {@code TaskContext.addTaskCompletionListener}; tests pass their own.
   */
  public static DeviceArena attach(DeviceArena arena, Consumer<Runnable> onTaskEnd) {
    onTaskEnd.accept(arena::close);
    return arena;
  }

  /** Arenas of tasks that are still running in this JVM (for tests and diagnostics). */
  public static int open() {
    return ARENAS.size();
  }
}
