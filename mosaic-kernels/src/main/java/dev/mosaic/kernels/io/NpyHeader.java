package dev.mosaic.kernels.io;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The header of a NumPy {@code .npy} array: the Python dict literal NumPy writes after the magic
 * and version, e.g. {@code {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }}. Parsing
 * accepts only what Mosaic can read as float32 (little- or big-endian {@code f4}/{@code f8}, C
 * order) and says in one line how to convert anything else.
 *
 * @param bytesPerElement 4 or 8
 * @param littleEndian byte order of the data
 * @param shape the array's shape ({@code []} for a 0-d array)
 */
record NpyHeader(int bytesPerElement, boolean littleEndian, int[] shape) {
  /** {@code \x93NUMPY}. */
  static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};

  /** Most dimensions (NumPy's limit). */
  static final int MAX_RANK = 64;

  private static final Pattern DESCR = Pattern.compile("['\"]descr['\"]\\s*:\\s*(['\"]([^'\"]*)['\"]|\\[)");
  private static final Pattern FORTRAN =
      Pattern.compile("['\"]fortran_order['\"]\\s*:\\s*(True|False)");
  private static final Pattern SHAPE = Pattern.compile("['\"]shape['\"]\\s*:\\s*\\(([^)]*)\\)");

  long numElements() {
    long n = 1;
    for (int d : shape) {
      n *= d;
    }
    return n;
  }

  /** Parses the dict literal {@code text} of {@code file} (array {@code array}, may be null). */
  static NpyHeader parse(Path file, String array, String text) {
    Matcher descr = DESCR.matcher(text);
    if (!descr.find()) {
      throw new TensorFileException(file, array, "npy header has no 'descr': " + preview(text));
    }
    if (descr.group(2) == null) {
      throw new TensorFileException(file, array, "structured dtype (a record array) is not"
          + " supported; save each field as its own float32 array");
    }
    String d = descr.group(2);
    if (d.contains("O")) {
      throw new TensorFileException(file, array, "holds Python objects (dtype '" + d
          + "', pickled); Mosaic reads float arrays only and never unpickles: save"
          + " np.asarray(a, dtype=np.float32)");
    }
    boolean little;
    int size;
    switch (d) {
      case "<f4" -> { little = true; size = 4; }
      case ">f4" -> { little = false; size = 4; }
      case "<f8" -> { little = true; size = 8; }
      case ">f8" -> { little = false; size = 8; }
      default -> throw new TensorFileException(file, array, "dtype '" + d + "' is not supported"
          + " (expected float32 '<f4' or float64 '<f8'); save a.astype(np.float32)");
    }
    Matcher fortran = FORTRAN.matcher(text);
    if (!fortran.find()) {
      throw new TensorFileException(file, array, "npy header has no 'fortran_order': "
          + preview(text));
    }
    Matcher shape = SHAPE.matcher(text);
    if (!shape.find()) {
      throw new TensorFileException(file, array, "npy header has no 'shape': " + preview(text));
    }
    int[] dims = dims(file, array, shape.group(1));
    // Fortran order is harmless where the layout is the same (rank < 2 or one non-unit axis)...
    // but NumPy writes C order for those anyway; refuse it plainly instead of guessing.
    if (fortran.group(1).equals("True")) {
      throw new TensorFileException(file, array, "array is in Fortran (column-major) order;"
          + " save np.ascontiguousarray(a) instead");
    }
    return new NpyHeader(size, little, dims);
  }

  private static int[] dims(Path file, String array, String tuple) {
    String[] parts = tuple.split(",");
    int[] dims = new int[parts.length];
    int rank = 0;
    for (String p : parts) {
      String s = p.trim();
      if (s.isEmpty()) {
        continue; // "(5,)" and "()"
      }
      if (s.endsWith("L")) {
        s = s.substring(0, s.length() - 1); // Python 2 longs
      }
      try {
        dims[rank] = Integer.parseInt(s);
      } catch (NumberFormatException e) {
        throw new TensorFileException(file, array, "npy shape (" + preview(tuple)
            + ") is not a tuple of integers below 2^31");
      }
      if (dims[rank] < 0) {
        throw new TensorFileException(file, array, "npy shape (" + tuple + ") has a negative size");
      }
      rank++;
    }
    if (rank > MAX_RANK) {
      throw new TensorFileException(file, array, "npy shape has " + rank + " dimensions, more than"
          + " NumPy's " + MAX_RANK);
    }
    return Arrays.copyOf(dims, rank);
  }

  private static String preview(String text) {
    String t = text.strip();
    return t.length() <= 120 ? t : t.substring(0, 100) + "... (" + t.length() + " chars)";
  }

  /**
   * The version-1.0 header block for a float32 C-order array of {@code shape}: magic, version,
   * length, the dict padded with spaces and a newline so the data starts at a multiple of 64
   * bytes, as NumPy writes it.
   */
  static byte[] encodeFloat32(int[] shape) {
    StringBuilder dict = new StringBuilder("{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < shape.length; i++) {
      dict.append(i == 0 ? "" : " ").append(shape[i]).append(',');
    }
    if (shape.length > 1) {
      dict.setLength(dict.length() - 1); // (3, 4) but (5,)
    }
    dict.append("), }");
    int preamble = MAGIC.length + 2 + 2;
    int total = preamble + dict.length() + 1;
    int padded = (total + 63) / 64 * 64;
    byte[] out = new byte[padded];
    System.arraycopy(MAGIC, 0, out, 0, MAGIC.length);
    out[6] = 1;
    out[7] = 0;
    int headerLen = padded - preamble;
    out[8] = (byte) headerLen;
    out[9] = (byte) (headerLen >>> 8);
    byte[] d = dict.toString().getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(d, 0, out, preamble, d.length);
    Arrays.fill(out, preamble + d.length, padded - 1, (byte) ' ');
    out[padded - 1] = '\n';
    return out;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NpyHeader h && h.bytesPerElement == bytesPerElement
        && h.littleEndian == littleEndian && Arrays.equals(h.shape, shape);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(shape) * 31 + bytesPerElement + (littleEndian ? 1 : 0);
  }

  @Override
  public String toString() {
    return (littleEndian ? "<f" : ">f") + bytesPerElement + Arrays.toString(shape);
  }
}
