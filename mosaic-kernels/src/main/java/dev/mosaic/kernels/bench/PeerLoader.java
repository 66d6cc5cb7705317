package dev.mosaic.kernels.bench;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Finds the PyTorch peer of {@code bench kernel --vs-pytorch} in the {@code mosaic-bench} module's
 * build output ({@code <mosaic.home>/mosaic-bench/target}: its classes and the {@code classpath.txt}
 * of DJL and libtorch jars) and loads it in its own class loader, so that neither the library nor
 * the CLI's classpath carries DJL. When it cannot, the result says why.
 */
public final class PeerLoader {
  static final String PEER_CLASS = "dev.mosaic.bench.TorchSdpaPeer";
  static final String BUILD_HINT =
      "build it once with: mvn -B -q -Pbench -pl mosaic-bench -am -DskipTests package";

  /** A loaded peer, or null and the reason. */
  public record Result(AttentionPeer peer, String whyNot) {}

  private PeerLoader() {}

  public static Result load(int threads) {
    Path home = Path.of(System.getProperty("mosaic.home", ".")).toAbsolutePath().normalize();
    return load(home.resolve("mosaic-bench").resolve("target"), threads);
  }

  static Result load(Path target, int threads) {
    Path classes = target.resolve("classes");
    Path classpath = target.resolve("classpath.txt");
    if (!Files.isDirectory(classes) || !Files.isRegularFile(classpath)) {
      return new Result(null, "mosaic-bench is not built (no " + classes + " or " + classpath
          + "); " + BUILD_HINT);
    }
    List<URL> urls = new ArrayList<>();
    try {
      urls.add(classes.toUri().toURL());
      for (String entry : Files.readString(classpath).trim().split(java.io.File.pathSeparator)) {
        if (!entry.isBlank()) {
          urls.add(Path.of(entry).toUri().toURL());
        }
      }
    } catch (IOException e) {
      return new Result(null, "cannot read " + classpath + ": " + e);
    }
    // DJL finds its engine through ServiceLoader on the context class loader. On success the
    // loader stays open for the JVM's life (libtorch, loaded through it, cannot be unloaded).
    URLClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]),
        PeerLoader.class.getClassLoader());
    Thread thread = Thread.currentThread();
    ClassLoader previous = thread.getContextClassLoader();
    thread.setContextClassLoader(loader);
    try {
      Object peer = Class.forName(PEER_CLASS, true, loader).getConstructor(int.class)
          .newInstance(threads);
      return new Result((AttentionPeer) peer, null);
    } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
      Throwable cause = e instanceof java.lang.reflect.InvocationTargetException
          && e.getCause() != null ? e.getCause() : e;
      try {
        loader.close();
      } catch (IOException closing) {
        cause.addSuppressed(closing);
      }
      return new Result(null, "PyTorch peer failed to load: " + cause);
    } finally {
      thread.setContextClassLoader(previous);
    }
  }
}
