package dev.mosaic.spark.train;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;

/**
 * Files on any Hadoop file system (local paths, {@code file:}, {@code hdfs:}, {@code s3a:}),
 * written and read through a local temporary copy so that the local-file codecs
 * ({@code Safetensors}) serve every scheme. Writes are atomic where the file system's rename is:
 * the bytes go to a hidden temporary file beside the target, which is then renamed over it.
 */
final class HadoopFiles {
  private HadoopFiles() {}

  /** Writes {@code target} from what {@code writeLocal} puts into a local file. */
  static void writeAtomically(String target, Configuration conf,
      Consumer<java.nio.file.Path> writeLocal) {
    Path dst = new Path(target);
    java.nio.file.Path local = localTemp();
    Path tmp = new Path(dst.getParent() == null ? new Path(".") : dst.getParent(),
        "." + dst.getName() + ".tmp-" + UUID.randomUUID());
    // A private instance: no .crc side files, without changing the shared cached one.
    try (FileSystem fs = FileSystem.newInstance(dst.toUri(), conf)) {
      fs.setWriteChecksum(false);
      try {
        writeLocal.accept(local);
        try (OutputStream out = fs.create(tmp, true)) {
          Files.copy(local, out);
        }
        FileContext.getFileContext(fs.getUri(), conf).rename(fs.makeQualified(tmp),
            fs.makeQualified(dst), Options.Rename.OVERWRITE);
      } finally {
        fs.delete(tmp, false);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + target + ": " + e.getMessage(), e);
    } finally {
      deleteQuietly(local);
    }
  }

  /** Reads {@code source} with {@code readLocal} from a local copy of it. */
  static <T> T read(String source, Configuration conf, Function<java.nio.file.Path, T> readLocal) {
    Path src = new Path(source);
    java.nio.file.Path local = localTemp();
    try (FileSystem fs = FileSystem.newInstance(src.toUri(), conf)) {
      if (!fs.exists(src)) {
        throw new IllegalArgumentException("no file at " + source);
      }
      try (InputStream in = fs.open(src)) {
        Files.copy(in, local, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
      return readLocal.apply(local);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + source + ": " + e.getMessage(), e);
    } finally {
      deleteQuietly(local);
    }
  }

  /** Whether {@code file} exists. */
  static boolean exists(String file, Configuration conf) {
    Path p = new Path(file);
    try (FileSystem fs = FileSystem.newInstance(p.toUri(), conf)) {
      return fs.exists(p);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot look up " + file + ": " + e.getMessage(), e);
    }
  }

  private static java.nio.file.Path localTemp() {
    try {
      return Files.createTempFile("mosaic-ckpt-", ".safetensors");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a local temporary file: " + e, e);
    }
  }

  private static void deleteQuietly(java.nio.file.Path p) {
    try {
      Files.deleteIfExists(p);
    } catch (IOException ignored) {
      // a leftover temporary file is harmless; the caller's outcome is what matters
    }
  }
}
