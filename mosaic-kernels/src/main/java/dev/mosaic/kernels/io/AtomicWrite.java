package dev.mosaic.kernels.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a file through a temporary file in the same directory that is moved into place, so a
 * reader never sees a partial file and a failed write leaves the old file as it was.
 */
final class AtomicWrite {
  /** What goes into the file. */
  interface Body {
    void writeTo(OutputStream out) throws IOException;
  }

  private AtomicWrite() {}

  static void to(Path file, Body body) {
    Path abs = file.toAbsolutePath();
    Path tmp = createTemp(file, abs.getParent(), abs.getFileName().toString());
    boolean done = false;
    try {
      try (OutputStream out = new BufferedOutputStream(
          Files.newOutputStream(tmp, StandardOpenOption.WRITE), 1 << 16)) {
        body.writeTo(out);
      }
      try {
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
      }
      done = true;
    } catch (IOException e) {
      throw new TensorFileException(file, null, "cannot write: " + e, e);
    } finally {
      if (!done) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
          // best effort; the original failure is what matters
        }
      }
    }
  }

  private static Path createTemp(Path file, Path dir, String base) {
    // Not Files.createTempFile: its mode 0600 would stay on the final file.
    for (int attempt = 0; ; attempt++) {
      Path tmp = dir.resolve(
          "." + base + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
      try {
        Files.newByteChannel(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
        return tmp;
      } catch (FileAlreadyExistsException e) {
        if (attempt >= 100) {
          throw new TensorFileException(file, null, "cannot create a temporary file in " + dir, e);
        }
      } catch (IOException e) {
        throw new TensorFileException(file, null, "cannot create a temporary file in " + dir
            + ": " + e, e);
      }
    }
  }
}
