package dev.mosaic.spark.runner;

import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.apache.spark.unsafe.Platform;

/**
 * Embeddings in Spark's internal form, read and written without a boxed {@code Float} per value:
 * an input {@code array<float>} arrives as {@link ArrayData} (an {@link UnsafeArrayData} over the
 * row's bytes) whose floats {@link ArrayData#toFloatArray()} copies in bulk, and an output vector
 * leaves as an {@link UnsafeArrayData} made from a range of a float[] with one memory copy. The
 * checks mirror {@link SequenceChecks#describe}, message for message.
 */
final class InternalEmbeddings {
  private InternalEmbeddings() {}

  /**
   * What is wrong with one embedding, or null when it is well formed: {@code embed} floats, or for
   * the nested form {@code features} arrays of them ({@code features < 0}: any number > 0).
   */
  static String describe(ArrayData value, boolean nested, int features, int embed) {
    if (value == null) {
      return "is null";
    }
    if (!nested) {
      return describeVector(value, embed, "has ");
    }
    int n = value.numElements();
    if (n == 0) {
      return "has no features";
    }
    if (features >= 0 && n != features) {
      return "has " + n + " features, expected " + features;
    }
    for (int j = 0; j < n; j++) {
      if (value.isNullAt(j)) {
        return "feature " + j + " is null";
      }
      String p = describeVector(value.getArray(j), embed, "feature " + j + " has ");
      if (p != null) {
        return p;
      }
    }
    return null;
  }

  /** The floats of a well-formed embedding ({@link #describe} returned null), row-major. */
  static float[] read(ArrayData value, boolean nested, int features, int embed) {
    if (!nested) {
      return value.toFloatArray();
    }
    float[] out = new float[features * embed];
    for (int j = 0; j < features; j++) {
      System.arraycopy(value.getArray(j).toFloatArray(), 0, out, j * embed, embed);
    }
    return out;
  }

  /**
   * {@code embed} floats of {@code y} from {@code off} as an output embedding: one array, or
   * {@code features} of them for the nested form.
   */
  static ArrayData write(float[] y, int off, boolean nested, int features, int embed) {
    if (!nested) {
      return vector(y, off, embed);
    }
    Object[] m = new Object[features];
    for (int j = 0; j < features; j++) {
      m[j] = vector(y, off + j * embed, embed);
    }
    return new GenericArrayData(m);
  }

  /** {@code y[off, off+len)} as an {@code array<float>} value: one bulk copy, no boxing. */
  static UnsafeArrayData vector(float[] y, int off, int len) {
    int byteOffset = Math.toIntExact(Platform.FLOAT_ARRAY_OFFSET + (long) off * Float.BYTES);
    return UnsafeArrayData.fromPrimitiveArray(y, byteOffset, len, Float.BYTES);
  }

  private static String describeVector(ArrayData v, int embed, String prefix) {
    int n = v.numElements();
    if (n != embed) {
      return prefix + n + " values, expected embedDim " + embed + " (from spec.weights())";
    }
    for (int i = 0; i < n; i++) {
      if (v.isNullAt(i)) {
        return prefix + "a null at index " + i;
      }
    }
    return null;
  }
}
