package dev.mosaic.spark.faults;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

/**
 * What {@link FaultPlugin} does to the barrier tasks of the next job, and the files through which
 * the executors and the test (driver) talk: one folder on this machine, shared by the driver and
 * the executor JVMs of a local-cluster. The test writes {@code plan.properties}; executors read it
 * when a barrier task starts and write their markers beside it. Every plan has a fresh id, so
 * markers of an earlier test never answer a later one.
 *
 * <p>Plan keys: {@code id}, and {@code rank.<r>=<action>} for the ranks that act. A rank acts once
 * per plan (the first barrier task with that partition to start, across jobs and stage attempts),
 * so a retried stage or a re-run job runs clean.
 */
public final class FaultPlan {
  /** Spark setting naming the folder, read by the executor plugin. */
  public static final String DIR_CONF = "spark.faults.dir";

  /** The actions a rank can take. */
  public enum Action {
    /**
     * Once the task's stack shows {@code RingStrategy} (its communicator is connected and the
     * ring has begun), write this JVM's pid to {@code <id>.pid} and SIGSTOP the whole JVM, so the
     * task freezes mid-ring; the test then kills it or keeps it stopped.
     */
    STOP_IN_RING,
    /**
     * Once the task's stack shows a pretraining step ({@code DataParallelStep}: its communicator
     * is connected and the stage's steps have begun), write this JVM's pid to {@code <id>.pid}
     * and end the JVM at once ({@code Runtime.halt}): an executor dying mid-training.
     */
    HALT_IN_TRAINING,
    /** Before the task's code runs (so before the rendezvous), wait for {@code <id>.go}. */
    HOLD,
    /**
     * Write the port of the listener this task opens for the rendezvous to {@code <id>.listener}
     * (found in /proc: the listening socket this JVM opened after the task started).
     */
    REPORT_LISTENER
  }

  private final Path dir;

  public FaultPlan(Path dir) {
    this.dir = dir;
  }

  public Path dir() {
    return dir;
  }

  /** Installs a new plan; returns its id. */
  public String install(Map<Integer, Action> actions) throws IOException {
    String id = UUID.randomUUID().toString().substring(0, 8);
    Properties p = new Properties();
    p.setProperty("id", id);
    actions.forEach((rank, action) -> p.setProperty("rank." + rank, action.name()));
    Files.createDirectories(dir);
    Path tmp = dir.resolve("plan.properties.tmp");
    try (Writer w = Files.newBufferedWriter(tmp)) {
      p.store(w, "fault plan");
    }
    moveAtomically(tmp, dir.resolve("plan.properties"));
    return id;
  }

  /** No faults for the next jobs. */
  public void clear() throws IOException {
    Files.deleteIfExists(dir.resolve("plan.properties"));
  }

  /** The current plan, or an empty one. */
  Properties read() {
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(dir.resolve("plan.properties"))) {
      p.load(r);
    } catch (NoSuchFileException e) {
      // no plan: nothing to do
    } catch (IOException e) {
      throw new IllegalStateException("cannot read the fault plan in " + dir + ": " + e, e);
    }
    return p;
  }

  /** Claims the one firing of {@code rank}'s action in plan {@code id}; false if already taken. */
  boolean claim(String id, int rank) {
    try {
      Files.createFile(dir.resolve(id + ".fired." + rank));
      return true;
    } catch (FileAlreadyExistsException e) {
      return false;
    } catch (IOException e) {
      throw new IllegalStateException("cannot claim fault " + id + " of rank " + rank + ": " + e,
          e);
    }
  }

  public Path marker(String id, String kind) {
    return dir.resolve(id + "." + kind);
  }

  /** Writes a marker atomically, so that a reader never sees it half written. */
  public void writeMarker(String id, String kind, String content) throws IOException {
    Path tmp = dir.resolve(id + "." + kind + ".tmp");
    Files.writeString(tmp, content);
    moveAtomically(tmp, marker(id, kind));
  }

  /** The marker's content once it exists; fails after {@code timeoutMs}. */
  public String awaitMarker(String id, String kind, long timeoutMs) throws IOException {
    Path p = marker(id, kind);
    long deadline = System.nanoTime() + timeoutMs * 1_000_000;
    while (!Files.exists(p)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no " + p.getFileName() + " after " + timeoutMs + " ms: the"
            + " fault did not fire (files: " + list() + ")");
      }
      sleep(20);
    }
    return Files.readString(p).trim();
  }

  private String list() throws IOException {
    try (var s = Files.list(dir)) {
      return s.map(x -> x.getFileName().toString()).sorted().toList().toString();
    }
  }

  private static void moveAtomically(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}
