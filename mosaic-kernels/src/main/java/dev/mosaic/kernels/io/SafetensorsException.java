package dev.mosaic.kernels.io;

import java.nio.file.Path;

/**
 * Anything wrong with reading or writing a safetensors file: malformed header, inconsistent
 * offsets, unsupported dtype, missing tensor, I/O failure. Unchecked, and the message is one line
 * that names the file, the tensor where there is one (cut to a sane length: {@link #tensor()} has
 * it whole), and the problem, so a CLI can print {@link #getMessage()} as is.
 */
public class SafetensorsException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;
  private final String tensor;
  private final String problem;

  public SafetensorsException(Path file, String tensor, String problem) {
    this(file, tensor, problem, null);
  }

  public SafetensorsException(Path file, String tensor, String problem, Throwable cause) {
    super(format(file, tensor, problem), cause);
    this.file = file;
    this.tensor = tensor;
    this.problem = problem;
  }

  private static String format(Path file, String tensor, String problem) {
    StringBuilder sb = new StringBuilder("safetensors file ").append(file);
    if (tensor != null) {
      sb.append(", tensor '").append(TensorNames.abbreviate(tensor)).append('\'');
    }
    return sb.append(": ").append(problem).toString();
  }

  /** The file being read or written. */
  public Path file() {
    return file;
  }

  /** The tensor concerned, or null when the problem is not about one tensor. */
  public String tensor() {
    return tensor;
  }

  /** The problem alone, without the file and tensor prefix. */
  public String problem() {
    return problem;
  }
}
