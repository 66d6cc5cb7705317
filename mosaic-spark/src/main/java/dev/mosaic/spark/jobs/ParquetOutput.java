package dev.mosaic.spark.jobs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.SaveMode;

/**
 * Writes a Dataset as Parquet so that the output path holds either the complete new result or
 * what it held before (nothing, or the previous result), never a partial one. Spark's own
 * {@code write().mode(Overwrite)} deletes the old result first and, when the job fails, leaves an
 * empty folder behind: unreadable, and the old result is gone.
 *
 * <p>The job writes to a hidden staging folder beside the target ({@code .NAME.mosaic-staging-*},
 * hidden from Spark and Hadoop readers by its leading dot, on the same file system so the rename
 * is cheap); only after Spark has committed it does the staging folder replace the target: the
 * old result is moved aside, the new one renamed in, the old one deleted. Between those two
 * renames the path briefly does not exist. A failed job deletes its staging folder; the next write
 * to the same path cleans up after a driver that died mid-write (see
 * {@link #cleanUpAfterCrashes}). One writer per path at a time, as with Spark's own writes.
 */
public final class ParquetOutput {
  private static final String STAGING = ".mosaic-staging-";
  private static final String OLD = ".mosaic-old-";

  private ParquetOutput() {}

  /** Writes {@code data} to {@code path}, replacing what was there only once it succeeded. */
  public static void write(Dataset<?> data, String path) {
    Configuration conf = data.sparkSession().sparkContext().hadoopConfiguration();
    try {
      Path target = new Path(path);
      FileSystem fs = target.getFileSystem(conf);
      target = fs.makeQualified(target);
      Path parent = target.getParent();
      if (parent == null) {
        throw new IllegalArgumentException("output path must not be a root folder, got " + path);
      }
      cleanUpAfterCrashes(fs, target);
      String unique = UUID.randomUUID().toString();
      Path staging = new Path(parent, "." + target.getName() + STAGING + unique);
      try {
        data.write().mode(SaveMode.ErrorIfExists).parquet(staging.toString());
        replace(fs, staging, target, new Path(parent, "." + target.getName() + OLD + unique));
      } finally {
        fs.delete(staging, true); // gone already when the rename succeeded
      }
    } catch (IOException e) {
      throw new UncheckedIOException("writing Parquet to " + path + ": " + e.getMessage(), e);
    }
  }

  /** Renames {@code staging} to {@code target}, moving an existing target aside first. */
  private static void replace(FileSystem fs, Path staging, Path target, Path old)
      throws IOException {
    boolean hadOld = fs.exists(target);
    if (hadOld && !fs.rename(target, old)) {
      throw new IOException("could not move the previous output " + target + " aside to " + old);
    }
    if (!fs.rename(staging, target)) {
      if (hadOld) {
        fs.rename(old, target); // put the previous result back
      }
      throw new IOException("could not rename the new output " + staging + " to " + target);
    }
    if (hadOld) {
      fs.delete(old, true);
    }
  }

  /**
   * Cleans up after earlier writes to {@code target} whose driver died: their staging folders are
   * deleted; a previous result moved aside is put back if nothing replaced it, else deleted.
   */
  private static void cleanUpAfterCrashes(FileSystem fs, Path target) throws IOException {
    Path parent = target.getParent();
    if (!fs.exists(parent)) {
      return;
    }
    String staging = "." + target.getName() + STAGING;
    String old = "." + target.getName() + OLD;
    for (FileStatus s : fs.listStatus(parent)) {
      String n = s.getPath().getName();
      if (n.startsWith(old) && !fs.exists(target)) {
        fs.rename(s.getPath(), target);
      } else if (n.startsWith(staging) || n.startsWith(old)) {
        fs.delete(s.getPath(), true);
      }
    }
  }
}
