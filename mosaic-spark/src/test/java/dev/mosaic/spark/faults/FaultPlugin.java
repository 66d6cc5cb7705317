package dev.mosaic.spark.faults;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.TaskContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * A Spark plugin ({@code spark.plugins}) that injects the faults of the current {@link FaultPlan}
 * into barrier tasks, from inside the executor JVMs, without any hook in Mosaic's own code: Spark
 * calls {@link ExecutorPlugin#onTaskStart()} on the task's thread, with its {@link TaskContext}
 * set, just before the task's code runs. From there the plugin can hold the task, or watch the
 * task thread's stack from a helper thread and act when the task reaches the ring.
 *
 * <p>Test code only: the fault ITs ship this package to the executors in a jar of their own.
 */
public final class FaultPlugin implements SparkPlugin {
  private static final String RING_CLASS = "dev.mosaic.spark.strategy.RingStrategy";
  private static final String TRAINING_STEP_CLASS = "dev.mosaic.spark.train.DataParallelStep";
  /** Upper bound on any wait of the plugin: a test that goes wrong must not leave a task stuck. */
  private static final long GIVE_UP_MS = 120_000;

  @Override
  public DriverPlugin driverPlugin() {
    return null; // nothing to do on the driver
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new Injector();
  }

  /** Runs in every executor JVM. */
  static final class Injector implements ExecutorPlugin {
    private FaultPlan plan;

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {
      String dir = ctx.conf().get(FaultPlan.DIR_CONF, null);
      plan = dir == null ? null : new FaultPlan(Path.of(dir));
    }

    @Override
    public void onTaskStart() {
      TaskContext tc = TaskContext.get();
      if (plan == null || !(tc instanceof BarrierTaskContext)) {
        return;
      }
      Properties p = plan.read();
      String id = p.getProperty("id");
      String action = p.getProperty("rank." + tc.partitionId());
      if (id == null || action == null || !plan.claim(id, tc.partitionId())) {
        return;
      }
      switch (FaultPlan.Action.valueOf(action)) {
        case STOP_IN_RING -> watch(id, tc, Thread.currentThread());
        case HALT_IN_TRAINING -> haltInTraining(id, tc, Thread.currentThread());
        case HOLD -> hold(id, tc);
        case REPORT_LISTENER -> reportListener(id, tc, listeningSockets().keySet());
        default -> throw new IllegalStateException("unknown fault action " + action);
      }
    }

    /** Stops this JVM (SIGSTOP) once {@code task} is inside the ring. */
    private void watch(String id, TaskContext tc, Thread task) {
      helper("fault-stop-in-ring", () -> {
        long deadline = System.currentTimeMillis() + GIVE_UP_MS;
        while (task.isAlive() && !tc.isCompleted() && System.currentTimeMillis() < deadline) {
          for (StackTraceElement f : task.getStackTrace()) {
            if (f.getClassName().equals(RING_CLASS)) {
              String pid = Long.toString(ProcessHandle.current().pid());
              plan.writeMarker(id, "pid", pid);
              // The JVM stops with this; the test kills it or continues it.
              new ProcessBuilder("kill", "-STOP", pid).inheritIO().start().waitFor();
              return;
            }
          }
          Thread.sleep(1);
        }
        plan.writeMarker(id, "missed", "the task ended before it reached the ring");
      });
    }

    /** Ends this JVM once {@code task} is running a training step. */
    private void haltInTraining(String id, TaskContext tc, Thread task) {
      helper("fault-halt-in-training", () -> {
        long deadline = System.currentTimeMillis() + GIVE_UP_MS;
        while (task.isAlive() && !tc.isCompleted() && System.currentTimeMillis() < deadline) {
          for (StackTraceElement f : task.getStackTrace()) {
            if (f.getClassName().equals(TRAINING_STEP_CLASS)) {
              plan.writeMarker(id, "pid", Long.toString(ProcessHandle.current().pid()));
              Runtime.getRuntime().halt(137);
            }
          }
          Thread.sleep(1);
        }
        plan.writeMarker(id, "missed", "the task ended before it reached a training step");
      });
    }

    /** Blocks the task (before its code runs) until the test says go. */
    private void hold(String id, TaskContext tc) {
      long deadline = System.currentTimeMillis() + GIVE_UP_MS;
      while (!Files.exists(plan.marker(id, "go")) && !tc.isInterrupted()
          && System.currentTimeMillis() < deadline) {
        FaultPlan.sleep(20);
      }
    }

    /** Reports the port of the first listening socket this JVM opens from now on. */
    private void reportListener(String id, TaskContext tc, java.util.Set<String> before) {
      helper("fault-report-listener", () -> {
        long deadline = System.currentTimeMillis() + GIVE_UP_MS;
        while (!tc.isCompleted() && System.currentTimeMillis() < deadline) {
          for (Map.Entry<String, String> s : listeningSockets().entrySet()) {
            if (!before.contains(s.getKey())) {
              plan.writeMarker(id, "listener", s.getValue());
              return;
            }
          }
          Thread.sleep(20);
        }
        plan.writeMarker(id, "missed", "no new listening socket while the task ran");
      });
    }

    private static void helper(String name, Step step) {
      Thread t = new Thread(() -> {
        try {
          step.run();
        } catch (Exception e) {
          System.err.println(name + " failed: " + e);
        }
      }, name);
      t.setDaemon(true);
      t.start();
    }
  }

  @FunctionalInterface
  private interface Step {
    void run() throws Exception;
  }

  /**
   * This JVM's listening TCP sockets, inode → {@code host:port} (the wildcard address as
   * 127.0.0.1, which reaches it): the LISTEN rows of /proc/self/net/tcp{,6}
   * whose inode is one of this process's file descriptors (the tables list the whole network
   * namespace, other processes' sockets included).
   */
  static Map<String, String> listeningSockets() {
    java.util.Set<String> mine = new java.util.HashSet<>();
    try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
      for (Path fd : fds) {
        try {
          String target = Files.readSymbolicLink(fd).toString();
          if (target.startsWith("socket:[")) {
            mine.add(target.substring(8, target.length() - 1));
          }
        } catch (IOException e) {
          // closed meanwhile
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot list /proc/self/fd: " + e, e);
    }
    Map<String, String> out = new HashMap<>();
    for (String table : new String[] {"/proc/self/net/tcp", "/proc/self/net/tcp6"}) {
      List<String> lines;
      try {
        lines = Files.readAllLines(Path.of(table));
      } catch (IOException e) {
        continue; // no IPv6 table
      }
      for (String line : lines.subList(1, lines.size())) {
        String[] f = line.trim().split("\\s+");
        if (f.length > 9 && f[3].equals("0A") && mine.contains(f[9])) {
          String[] local = f[1].split(":");
          out.put(f[9], host(local[0]) + ":" + Integer.parseInt(local[1], 16));
        }
      }
    }
    return out;
  }

  /**
   * The address of a /proc/net/tcp{,6} row: 4 or 16 bytes in hex, each 32-bit word in host (little
   * endian) order. IPv4-mapped IPv6 addresses become IPv4; wildcards 127.0.0.1.
   */
  static String host(String hex) {
    byte[] b = new byte[hex.length() / 2];
    for (int word = 0; word < b.length / 4; word++) {
      for (int i = 0; i < 4; i++) {
        int at = (word * 4 + 3 - i) * 2; // little-endian word: last hex pair is the first byte
        b[word * 4 + i] = (byte) Integer.parseInt(hex.substring(at, at + 2), 16);
      }
    }
    try {
      java.net.InetAddress a = java.net.InetAddress.getByAddress(b);
      if (a.isAnyLocalAddress()) {
        return "127.0.0.1";
      }
      return a instanceof java.net.Inet6Address ? "[" + a.getHostAddress() + "]"
          : a.getHostAddress();
    } catch (java.net.UnknownHostException e) {
      throw new IllegalStateException("bad address " + hex, e);
    }
  }
}
