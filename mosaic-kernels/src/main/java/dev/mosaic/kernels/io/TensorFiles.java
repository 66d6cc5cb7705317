package dev.mosaic.kernels.io;

import dev.mosaic.kernels.Tensor;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * Tensor files by extension: {@code .npy} (one NumPy array), {@code .npz} (NumPy arrays by name),
 * anything else safetensors (tensors by name; the historical default, so {@code .safetensors},
 * {@code .st} and names without an extension keep working). Everything comes back as float32.
 */
public final class TensorFiles {
  /** The kinds of file, chosen from the file name. */
  public enum Format {
    SAFETENSORS, NPY, NPZ;

    /** The format of {@code file}, from its extension (case-insensitive). */
    public static Format of(Path file) {
      Path name = file.getFileName();
      String n = name == null ? "" : name.toString().toLowerCase(Locale.ROOT);
      if (n.endsWith(".npy")) {
        return NPY;
      }
      if (n.endsWith(".npz")) {
        return NPZ;
      }
      return SAFETENSORS;
    }
  }

  private TensorFiles() {}

  /**
   * Every tensor in {@code file} by name. A {@code .npy} holds one array, returned under {@code
   * name} when a caller knows what it should be called (see {@link #read(Path, String)}); here it
   * is named after the file, without the extension.
   */
  public static Map<String, Tensor> readAll(Path file) {
    return switch (Format.of(file)) {
      case NPY -> Map.of(stem(file), NpyFile.read(file));
      case NPZ -> NpzFile.read(file);
      case SAFETENSORS -> Safetensors.read(file);
    };
  }

  /** The tensor {@code name} of {@code file}; a {@code .npy} file's one array, whatever its name. */
  public static Tensor read(Path file, String name) {
    return switch (Format.of(file)) {
      case NPY -> NpyFile.read(file);
      case NPZ -> NpzFile.read(file, name);
      case SAFETENSORS -> Safetensors.read(file, name);
    };
  }

  /** Writes {@code tensors} in {@code file}'s format; a {@code .npy} takes exactly one tensor. */
  public static void write(Path file, Map<String, Tensor> tensors) {
    switch (Format.of(file)) {
      case NPY -> {
        requireOne(file, tensors.size());
        NpyFile.write(file, tensors.values().iterator().next());
      }
      case NPZ -> NpzFile.write(file, tensors);
      case SAFETENSORS -> Safetensors.write(file, tensors);
    }
  }

  /** Fails unless {@code file}'s format can hold {@code count} tensors (a .npy holds one). */
  public static void requireOne(Path file, int count) {
    if (Format.of(file) == Format.NPY && count != 1) {
      throw new TensorFileException(file, null, "a .npy file holds one array, not " + count
          + "; use .npz or .safetensors for several named tensors");
    }
  }

  private static String stem(Path file) {
    String n = file.getFileName().toString();
    int dot = n.lastIndexOf('.');
    return dot > 0 ? n.substring(0, dot) : n;
  }
}
