package dev.mosaic.spark.faults;

import dev.mosaic.spark.runner.MosaicConfig;
import dev.mosaic.spark.runner.SparkSessions;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;

/**
 * A {@code local-cluster} session whose executor JVMs run {@link FaultPlugin}, and the means to
 * hurt them: their pids (they are child processes of this JVM), signals, and waits for Spark to
 * replace a lost executor. One per test class; {@link #close()} stops Spark and checks that no
 * executor JVM outlives it.
 */
public final class FaultCluster implements AutoCloseable {
  private static final String EXECUTOR_MAIN = "CoarseGrainedExecutorBackend";

  private final SparkSession spark;
  private final FaultPlan plan;
  private final int executors;

  private FaultCluster(SparkSession spark, FaultPlan plan, int executors) {
    this.spark = spark;
    this.plan = plan;
    this.executors = executors;
  }

  /**
   * Starts {@code local-cluster[executors,1,1024]} with the plugin. The caller has prepared the
   * Spark home (the runner package's ItSparkHome). {@code extra} overrides the defaults here.
   */
  public static FaultCluster start(String appName, int executors, Path workDir,
      Map<String, String> extra) throws IOException {
    Path dir = workDir.resolve("plan");
    Files.createDirectories(dir);
    FaultPlan plan = new FaultPlan(dir);
    plan.clear();
    Map<String, String> conf = new HashMap<>();
    conf.put("spark.ui.enabled", "false");
    conf.put("spark.executor.memory", "640m");
    conf.put("spark.plugins", FaultPlugin.class.getName());
    conf.put("spark.jars", pluginJar(workDir.resolve("fault-plugin.jar")).toString());
    conf.put(FaultPlan.DIR_CONF, dir.toString());
    // spark.barrier.sync.timeout stays at Spark's default (365 days): the rendezvous must be
    // bounded by Mosaic's own comm timeout, not by a test setting.
    conf.put("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "90");
    conf.put(MosaicConfig.COMM_TIMEOUT, "30s");
    conf.put(MosaicConfig.EXECUTOR_WAIT, "90s");
    conf.putAll(extra);
    SparkSession spark = SparkSessions.getOrCreate(
        "local-cluster[" + executors + ",1,1024]", appName, conf);
    FaultCluster c = new FaultCluster(spark, plan, executors);
    c.awaitExecutors(120_000);
    return c;
  }

  public SparkSession spark() {
    return spark;
  }

  public FaultPlan plan() {
    return plan;
  }

  /**
   * Waits until Spark has {@code executors} live executors and as many executor JVMs run (after a
   * kill, until the worker has started the replacement and it has registered).
   */
  public void awaitExecutors(long timeoutMs) {
    long deadline = System.nanoTime() + timeoutMs * 1_000_000;
    while (true) {
      int registered = spark.sparkContext().statusTracker().getExecutorInfos().length - 1;
      List<ProcessHandle> jvms = executorProcesses();
      if (registered == executors && jvms.size() == executors) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("after " + timeoutMs + " ms: " + registered
            + " executors registered, executor JVMs " + jvms + ", expected " + executors);
      }
      FaultPlan.sleep(100);
    }
  }

  /** The live executor JVMs this JVM started (local-cluster's workers live here). */
  public static List<ProcessHandle> executorProcesses() {
    List<ProcessHandle> out = new ArrayList<>();
    ProcessHandle.current().descendants()
        .filter(p -> p.isAlive() && isExecutor(p))
        .forEach(out::add);
    return out;
  }

  private static boolean isExecutor(ProcessHandle p) {
    Optional<String[]> args = p.info().arguments();
    return args.map(a -> Stream.of(a).anyMatch(s -> s.endsWith(EXECUTOR_MAIN))).orElse(false);
  }

  /**
   * The executor JVM a fault marker names. Taken while it is alive (stopped), the handle knows the
   * process's start time, so a pid the kernel reuses later (pid_max may be 32768) is never
   * mistaken for it: every signal below goes through the handle.
   */
  public static ProcessHandle process(String pid) {
    return ProcessHandle.of(Long.parseLong(pid.trim()))
        .orElseThrow(() -> new AssertionError("executor JVM " + pid + " is gone already"));
  }

  /** Sends {@code signal} (STOP, CONT) with kill(1), if {@code p} is still alive. */
  public static void signal(ProcessHandle p, String signal) {
    if (!p.isAlive()) {
      return;
    }
    try {
      Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).inheritIO()
          .start();
      if (!kill.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
        kill.destroyForcibly();
        throw new AssertionError("kill -" + signal + " " + p.pid() + " did not return in 30 s");
      }
    } catch (IOException e) {
      throw new AssertionError("kill -" + signal + " " + p.pid() + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** SIGKILL, and wait until the process is gone (reaped by the worker that started it). */
  public static void kill(ProcessHandle p) {
    p.destroyForcibly();
    awaitGone(p, 60_000);
  }

  public static void awaitGone(ProcessHandle p, long timeoutMs) {
    long deadline = System.nanoTime() + timeoutMs * 1_000_000;
    while (p.isAlive()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("executor JVM " + p.pid() + " still alive " + timeoutMs
            + " ms later, state " + state(p));
      }
      FaultPlan.sleep(20);
    }
  }

  /** The process state letter of /proc/PID/stat (R, S, T for stopped, Z, ...), or "gone". */
  public static String state(ProcessHandle p) {
    if (!p.isAlive()) {
      return "gone";
    }
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(p.pid()), "stat"));
      int close = stat.lastIndexOf(')');
      return stat.substring(close + 2, close + 3);
    } catch (IOException e) {
      return "gone";
    }
  }

  /** Waits until {@code p} is stopped (state T) by its own SIGSTOP. */
  public static void awaitStopped(ProcessHandle p, long timeoutMs) {
    long deadline = System.nanoTime() + timeoutMs * 1_000_000;
    while (!state(p).equals("T")) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("executor JVM " + p.pid() + " not stopped after " + timeoutMs
            + " ms, state " + state(p));
      }
      FaultPlan.sleep(10);
    }
  }

  /** Continues and kills {@code p} if it still runs: no stopped JVM may outlive a test. */
  public static void release(ProcessHandle p) {
    if (p.isAlive()) {
      signal(p, "CONT");
      p.destroyForcibly();
    }
  }

  @Override
  public void close() throws IOException {
    plan.clear();
    spark.stop();
    // Stopping the context stops the executors; none may outlive the test class.
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (!executorProcesses().isEmpty() && System.nanoTime() < deadline) {
      FaultPlan.sleep(200);
    }
    List<ProcessHandle> left = executorProcesses();
    left.forEach(FaultCluster::release);
    if (!left.isEmpty()) {
      throw new AssertionError("executor JVMs left running after the session stopped: " + left);
    }
  }

  /**
   * A jar of this package's compiled classes (the plugin and what fault tests ship to executors),
   * written from the test class output folder. Executors load it through {@code spark.jars}.
   */
  static Path pluginJar(Path jar) throws IOException {
    Path classes;
    try {
      classes = Path.of(FaultPlugin.class.getProtectionDomain().getCodeSource().getLocation()
          .toURI());
    } catch (URISyntaxException e) {
      throw new IOException(e);
    }
    String pkg = FaultPlugin.class.getPackageName().replace('.', '/');
    Path root = classes.resolve(pkg);
    Files.createDirectories(jar.getParent());
    try (OutputStream os = Files.newOutputStream(jar);
        JarOutputStream out = new JarOutputStream(os);
        Stream<Path> files = Files.list(root)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".class")).sorted().toList()) {
        out.putNextEntry(new JarEntry(pkg + "/" + f.getFileName()));
        Files.copy(f, out);
        out.closeEntry();
      }
    }
    return jar;
  }
}
