package dev.mosaic.spark.comm;

import dev.mosaic.kernels.Tensor;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * Data-parallel gradient exchange over the tasks of a barrier stage: every rank computed gradients
 * of the same parameters on its own rows; afterwards every rank holds their sum (or mean), so the
 * optimizer steps stay identical everywhere. The named tensors are packed in name order into one
 * flat buffer and reduced with a single {@link Communicator#allReduce} (one collective per call,
 * whatever the number of tensors); the result is bit-identical on every rank.
 *
 * <p>Before that, one small all-gather compares the names and shapes of every rank, so that
 * mismatched maps fail on every rank with the same one-line error instead of summing unrelated
 * numbers or hanging on buffers of different lengths.
 */
public final class GradientAllReduce {
  /** What every rank ends with. */
  public enum Mode {
    /** Σ over ranks. */
    SUM,
    /** Σ over ranks / ranks: the gradient of the mean of per-rank losses. */
    MEAN
  }

  private GradientAllReduce() {}

  /**
   * Replaces every tensor of {@code grads} (in place: the same {@link Tensor} objects, so the
   * caller's map and any optimizer holding them see the result) with its sum or mean over the
   * ranks of {@code comm}. Collective: every rank calls it with the same names and shapes.
   */
  public static void allReduce(Communicator comm, Map<String, Tensor> grads, Mode mode) {
    if (grads == null || mode == null) {
      throw new IllegalArgumentException("grads and mode must be given, got grads " + grads
          + " and mode " + mode);
    }
    TreeMap<String, Tensor> ordered = new TreeMap<>(grads); // every rank packs in name order
    checkSameLayout(comm, ordered);
    long total = 0;
    for (Tensor t : ordered.values()) {
      total += t.size();
    }
    if (total > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("gradients hold " + total + " floats; one all-reduce"
          + " buffer holds at most " + (Integer.MAX_VALUE - 8));
    }
    float[] flat = new float[(int) total];
    int off = 0;
    for (Tensor t : ordered.values()) {
      System.arraycopy(t.data(), 0, flat, off, t.size());
      off += t.size();
    }
    comm.allReduce(flat, Communicator.ReduceOp.SUM);
    float scale = mode == Mode.MEAN ? 1f / comm.size() : 1f;
    off = 0;
    for (Tensor t : ordered.values()) {
      float[] d = t.data();
      for (int i = 0; i < t.size(); i++) {
        d[i] = flat[off + i] * scale;
      }
      off += t.size();
    }
  }

  /** All-gathers "name shape; …" and fails, on every rank alike, unless all ranks agree. */
  private static void checkSameLayout(Communicator comm, TreeMap<String, Tensor> ordered) {
    float[][] all = comm.allGather(encode(describe(ordered)));
    String first = decode(all[0]);
    for (int r = 1; r < all.length; r++) {
      String theirs = decode(all[r]);
      if (!theirs.equals(first)) {
        throw new IllegalArgumentException("gradient all-reduce: rank " + r + " has gradients ["
            + theirs + "] but rank 0 has [" + first + "]; every rank needs the same names and"
            + " shapes");
      }
    }
  }

  private static String describe(TreeMap<String, Tensor> ordered) {
    StringBuilder sb = new StringBuilder();
    for (Map.Entry<String, Tensor> e : ordered.entrySet()) {
      if (sb.length() > 0) {
        sb.append("; ");
      }
      sb.append(e.getKey()).append(' ').append(Arrays.toString(e.getValue().shape()));
    }
    return sb.toString();
  }

  /** One float per UTF-8 byte: exact, and the communicator moves only floats. */
  private static float[] encode(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    float[] f = new float[b.length];
    for (int i = 0; i < b.length; i++) {
      f[i] = b[i] & 0xff;
    }
    return f;
  }

  private static String decode(float[] f) {
    byte[] b = new byte[f.length];
    for (int i = 0; i < f.length; i++) {
      b[i] = (byte) (int) f[i];
    }
    return new String(b, StandardCharsets.UTF_8);
  }
}
