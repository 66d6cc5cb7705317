package dev.mosaic.kernels.io;

import dev.mosaic.kernels.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Reads and writes NumPy {@code .npz} archives: a zip of {@code .npy} members, one per array, the
 * array's name being the member's name without {@code .npy} (what {@code np.savez(f, x=a)} and
 * {@code np.savez_compressed} write). Each member is read as {@link NpyFile} reads a file.
 * Written archives are deflated (NumPy reads both).
 */
public final class NpzFile {
  private static final String SUFFIX = ".npy";

  private NpzFile() {}

  /** Every array in {@code file}, in archive order. */
  public static Map<String, Tensor> read(Path file) {
    try (ZipFile zip = open(file)) {
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (ZipEntry e : members(file, zip)) {
        out.put(arrayName(e), read(file, zip, e));
      }
      return out;
    } catch (IOException e) {
      throw new TensorFileException(file, null, "cannot read: " + e, e);
    }
  }

  /** The array {@code name} of {@code file}; other members are not read. */
  public static Tensor read(Path file, String name) {
    try (ZipFile zip = open(file)) {
      ZipEntry e = zip.getEntry(name + SUFFIX);
      if (e == null) {
        List<String> names = new ArrayList<>();
        for (ZipEntry m : members(file, zip)) {
          names.add(arrayName(m));
        }
        throw new TensorFileException(file, name, "no such array; the archive has "
            + TensorNames.count(names.size()) + " array(s): " + TensorNames.list(names));
      }
      return read(file, zip, e);
    } catch (IOException e) {
      throw new TensorFileException(file, name, "cannot read: " + e, e);
    }
  }

  /** Writes {@code tensors} as float32 members {@code <name>.npy}, atomically. */
  public static void write(Path file, Map<String, Tensor> tensors) {
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      if (e.getKey() == null || e.getKey().isEmpty() || e.getValue() == null) {
        throw new TensorFileException(file, e.getKey(), "array name is empty or its tensor null");
      }
    }
    AtomicWrite.to(file, out -> {
      ZipOutputStream zip = new ZipOutputStream(out);
      zip.setLevel(Deflater.BEST_SPEED);
      for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
        zip.putNextEntry(new ZipEntry(e.getKey() + SUFFIX));
        NpyFile.write(zip, e.getValue());
        zip.closeEntry();
      }
      zip.finish();
    });
  }

  private static ZipFile open(Path file) {
    try {
      if (!Files.isRegularFile(file)) {
        throw new NoSuchFileException(file.toString());
      }
      return new ZipFile(file.toFile());
    } catch (NoSuchFileException e) {
      throw new TensorFileException(file, null, "no such file", e);
    } catch (ZipException e) {
      throw new TensorFileException(file, null, "not a .npz archive (a zip of .npy arrays): "
          + e.getMessage(), e);
    } catch (IOException e) {
      throw new TensorFileException(file, null, "cannot open: " + e, e);
    }
  }

  /** The archive's members, refusing anything that is not an {@code .npy} array. */
  private static List<ZipEntry> members(Path file, ZipFile zip) {
    List<ZipEntry> out = new ArrayList<>();
    Enumeration<? extends ZipEntry> entries = zip.entries();
    while (entries.hasMoreElements()) {
      ZipEntry e = entries.nextElement();
      if (e.isDirectory()) {
        continue;
      }
      if (!e.getName().endsWith(SUFFIX)) {
        throw new TensorFileException(file, e.getName(), "archive member is not a .npy array");
      }
      out.add(e);
    }
    return out;
  }

  private static String arrayName(ZipEntry e) {
    return e.getName().substring(0, e.getName().length() - SUFFIX.length());
  }

  private static Tensor read(Path file, ZipFile zip, ZipEntry e) throws IOException {
    try (InputStream in = zip.getInputStream(e)) {
      return NpyFile.read(in, e.getSize(), file, arrayName(e));
    }
  }
}
