package dev.mosaic.spark.runner;

import dev.mosaic.kernels.Tensor;
import java.util.Arrays;
import java.util.Map;

/**
 * Checks on the driver, before a barrier job starts, for inputs that would otherwise fail inside
 * the tasks (where Spark retries them and reports a stack trace per task): more tasks than
 * positions along the attention axis, empty axes, and NaN or infinite values, which attention
 * spreads to every output row they touch. Each failure is an {@link IllegalArgumentException}
 * with a one-line message naming the tensor and what is wrong. The CLI runs these; library callers
 * of {@link ShardedAttention} can call {@link #check} the same way.
 */
public final class ShardedInputCheck {
  private ShardedInputCheck() {}

  /**
   * Everything below for input {@code x} sharded over {@code tasks} along {@code axis}: no empty
   * axis, at least one position per task, only finite values.
   */
  public static void check(Tensor x, int axis, int tasks) {
    int a = Tensor.normalizeAxis(axis, x.rank(), "axis");
    requireNonEmpty("x", x, a);
    requireShardable(x.dim(a), "axis " + a, tasks, "spSize " + tasks);
    requireFinite("x", x);
  }

  /**
   * Every task must own at least one position: the strategies exchange blocks of each task's
   * rows, and an empty block has nothing to send (a ring with 3 positions cannot have 4 ranks).
   *
   * @param axisName how to call the axis in the message, e.g. {@code "axis 1"}
   * @param tasksName where the task count came from, e.g. {@code "--sp 4"}
   */
  public static void requireShardable(long length, String axisName, int tasks, String tasksName) {
    if (length < tasks) {
      throw new IllegalArgumentException(tasksName + " needs at least " + tasks
          + " positions along " + axisName + ", which has " + length);
    }
  }

  /** Every axis of {@code t} has at least one position; {@code attentionAxis} is named as such. */
  public static void requireNonEmpty(String name, Tensor t, int attentionAxis) {
    int[] shape = t.shape();
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] > 0) {
        continue;
      }
      String what = i == shape.length - 1 ? "the embedding (last axis) is empty"
          : i == attentionAxis ? "attention axis " + i + " is empty: nothing to attend over"
          : "axis " + i + " is empty";
      throw new IllegalArgumentException(
          "tensor '" + name + "' has shape " + Arrays.toString(shape) + ": " + what);
    }
  }

  /** Every value of {@code t} is finite; else names the count and the first one's index. */
  public static void requireFinite(String name, Tensor t) {
    float[] data = t.data();
    int count = 0;
    int first = -1;
    for (int i = 0; i < data.length; i++) {
      if (!Float.isFinite(data[i])) {
        count++;
        if (first < 0) {
          first = i;
        }
      }
    }
    if (count > 0) {
      throw new IllegalArgumentException("tensor '" + name + "' has " + count + " non-finite value"
          + (count == 1 ? "" : "s") + " (first " + describe(data[first]) + " at "
          + Arrays.toString(index(first, t.shape())) + ")");
    }
  }

  /** {@link #requireFinite(String, Tensor)} for each tensor, in the map's order. */
  public static void requireFinite(Map<String, Tensor> tensors) {
    tensors.forEach(ShardedInputCheck::requireFinite);
  }

  private static String describe(float v) {
    return Float.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  }

  /** The row-major index of flat position {@code flat} in {@code shape}. */
  static int[] index(int flat, int[] shape) {
    int[] idx = new int[shape.length];
    for (int i = shape.length - 1; i >= 0; i--) {
      idx[i] = flat % shape[i];
      flat /= shape[i];
    }
    return idx;
  }
}
