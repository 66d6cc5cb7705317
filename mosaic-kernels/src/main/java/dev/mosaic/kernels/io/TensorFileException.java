package dev.mosaic.kernels.io;

import java.nio.file.Path;

/**
 * Anything wrong with reading or writing a NumPy {@code .npy}/{@code .npz} file, or a tensor file
 * whose kind {@link TensorFiles} cannot handle: unsupported dtype, Fortran order, pickled objects,
 * truncated data, I/O failure. Unchecked; the message is one line naming the file, the array where
 * there is one, and the problem, so a CLI can print it as is.
 */
public class TensorFileException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public TensorFileException(Path file, String array, String problem) {
    this(file, array, problem, null);
  }

  public TensorFileException(Path file, String array, String problem, Throwable cause) {
    super(format(file, array, problem), cause);
  }

  private static String format(Path file, String array, String problem) {
    StringBuilder sb = new StringBuilder("tensor file ").append(file);
    if (array != null) {
      sb.append(", array '").append(TensorNames.abbreviate(array)).append('\'');
    }
    return sb.append(": ").append(problem).toString();
  }
}
