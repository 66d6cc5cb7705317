package dev.mosaic.kernels;

import java.util.Arrays;
import java.util.Random;

/**
 * A row-major, contiguous float32 tensor. Deliberately small: shape, storage, reshape (a view on the
 * same storage), permute (a contiguous copy) and element access. Anything strided lives in
 * {@link BlockView}, which is what kernels read.
 */
public final class Tensor implements java.io.Serializable {
  private static final long serialVersionUID = 1L;
  private final int[] shape;
  private final float[] data;

  private Tensor(float[] data, int[] shape) {
    this.shape = shape;
    this.data = data;
  }

  /** Wraps {@code data} (not copied) as a tensor of the given shape. */
  public static Tensor of(float[] data, int... shape) {
    long n = checkedSize(shape);
    if (n != data.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(shape) + " needs " + n + " elements, data has " + data.length);
    }
    return new Tensor(data, shape.clone());
  }

  public static Tensor zeros(int... shape) {
    return new Tensor(new float[Math.toIntExact(checkedSize(shape))], shape.clone());
  }

  /** Standard-normal entries from {@code rnd}, scaled by {@code std}. */
  public static Tensor randn(Random rnd, float std, int... shape) {
    Tensor t = zeros(shape);
    for (int i = 0; i < t.data.length; i++) {
      t.data[i] = (float) rnd.nextGaussian() * std;
    }
    return t;
  }

  static long checkedSize(int[] shape) {
    long n = 1;
    for (int d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
      }
      n *= d;
      if (n > Integer.MAX_VALUE - 8) {
        throw new IllegalArgumentException(
            "shape " + Arrays.toString(shape) + " has more than 2^31 elements; shard it");
      }
    }
    return n;
  }

  public int rank() {
    return shape.length;
  }

  public int[] shape() {
    return shape.clone();
  }

  /** Size of dimension {@code axis}; negative axes count from the end. */
  public int dim(int axis) {
    return shape[normalizeAxis(axis, shape.length, "axis")];
  }

  public int size() {
    return data.length;
  }

  /** The backing storage, row-major. Writes are visible through this tensor. */
  public float[] data() {
    return data;
  }

  public Tensor copy() {
    return new Tensor(data.clone(), shape.clone());
  }

  /** A copy with every element's absolute value (bounds that need attention on |V|). */
  public Tensor abs() {
    Tensor t = copy();
    float[] a = t.data();
    for (int i = 0; i < a.length; i++) {
      a[i] = Math.abs(a[i]);
    }
    return t;
  }

  /** The largest absolute value, 0 for an empty tensor. */
  public float maxAbs() {
    float m = 0;
    for (float x : data()) {
      m = Math.max(m, Math.abs(x));
    }
    return m;
  }

  /** Same storage, new shape (one dimension may be -1). */
  public Tensor reshape(int... newShape) {
    int[] s = newShape.clone();
    int infer = -1;
    long known = 1;
    for (int i = 0; i < s.length; i++) {
      if (s[i] == -1) {
        if (infer >= 0) {
          throw new IllegalArgumentException("only one -1 allowed in " + Arrays.toString(newShape));
        }
        infer = i;
      } else {
        known *= s[i];
      }
    }
    if (infer >= 0) {
      if (known == 0 || data.length % known != 0) {
        throw new IllegalArgumentException(
            "cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
      }
      s[infer] = (int) (data.length / known);
    }
    if (checkedSize(s) != data.length) {
      throw new IllegalArgumentException(
          "cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
    }
    return new Tensor(data, s);
  }

  /** A contiguous copy with dimensions reordered: result dim i is this tensor's dim perm[i]. */
  public Tensor permute(int... perm) {
    int r = shape.length;
    if (perm.length != r) {
      throw new IllegalArgumentException(
          "permutation " + Arrays.toString(perm) + " does not match rank " + r);
    }
    boolean[] seen = new boolean[r];
    boolean identity = true;
    for (int i = 0; i < r; i++) {
      if (perm[i] < 0 || perm[i] >= r || seen[perm[i]]) {
        throw new IllegalArgumentException("not a permutation: " + Arrays.toString(perm));
      }
      seen[perm[i]] = true;
      identity &= perm[i] == i;
    }
    if (identity) {
      return copy();
    }
    int[] outShape = new int[r];
    long[] srcStrides = strides(shape);
    long[] permStrides = new long[r];
    for (int i = 0; i < r; i++) {
      outShape[i] = shape[perm[i]];
      permStrides[i] = srcStrides[perm[i]];
    }
    Tensor out = zeros(outShape);
    // Copy the innermost dimension in a tight loop; walk the rest with an index counter.
    int inner = outShape[r - 1];
    long innerStride = permStrides[r - 1];
    int[] idx = new int[r - 1];
    int outPos = 0;
    int rows = inner == 0 ? 0 : out.data.length / inner;
    long src = 0;
    for (int row = 0; row < rows; row++) {
      if (innerStride == 1) {
        System.arraycopy(data, (int) src, out.data, outPos, inner);
      } else {
        long s = src;
        for (int j = 0; j < inner; j++, s += innerStride) {
          out.data[outPos + j] = data[(int) s];
        }
      }
      outPos += inner;
      for (int d = r - 2; d >= 0; d--) {
        idx[d]++;
        src += permStrides[d];
        if (idx[d] < outShape[d]) {
          break;
        }
        src -= permStrides[d] * outShape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  /** Moves dimension {@code from} to position {@code to} (both may be negative); contiguous copy. */
  public Tensor moveAxis(int from, int to) {
    int r = shape.length;
    int f = normalizeAxis(from, r, "from");
    int t = normalizeAxis(to, r, "to");
    int[] perm = moveAxisPermutation(r, f, t);
    return permute(perm);
  }

  /** The permutation that moves axis {@code from} to position {@code to}. */
  public static int[] moveAxisPermutation(int rank, int from, int to) {
    int[] rest = new int[rank - 1];
    for (int i = 0, j = 0; i < rank; i++) {
      if (i != from) {
        rest[j++] = i;
      }
    }
    int[] perm = new int[rank];
    for (int i = 0, j = 0; i < rank; i++) {
      perm[i] = i == to ? from : rest[j++];
    }
    return perm;
  }

  /** The inverse permutation: {@code inv[perm[i]] = i}. */
  public static int[] inverse(int[] perm) {
    int[] inv = new int[perm.length];
    for (int i = 0; i < perm.length; i++) {
      inv[perm[i]] = i;
    }
    return inv;
  }

  public float get(int... index) {
    return data[offset(index)];
  }

  public void set(float value, int... index) {
    data[offset(index)] = value;
  }

  private int offset(int[] index) {
    if (index.length != shape.length) {
      throw new IllegalArgumentException(
          "index " + Arrays.toString(index) + " does not match rank " + shape.length);
    }
    int off = 0;
    for (int i = 0; i < shape.length; i++) {
      if (index[i] < 0 || index[i] >= shape[i]) {
        throw new IndexOutOfBoundsException(
            "index " + Arrays.toString(index) + " outside shape " + Arrays.toString(shape));
      }
      off = off * shape[i] + index[i];
    }
    return off;
  }

  static long[] strides(int[] shape) {
    long[] s = new long[shape.length];
    long acc = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      s[i] = acc;
      acc *= shape[i];
    }
    return s;
  }

  /**
   * Resolves a possibly negative axis against {@code rank}, with an error that names the argument.
   */
  public static int normalizeAxis(int axis, int rank, String argName) {
    int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      throw new IllegalArgumentException(
          argName + " " + axis + " is out of range for a tensor of rank " + rank
              + " (expected " + (-rank) + ".." + (rank - 1) + ")");
    }
    return a;
  }

  @Override
  public String toString() {
    return "Tensor" + Arrays.toString(shape);
  }
}
