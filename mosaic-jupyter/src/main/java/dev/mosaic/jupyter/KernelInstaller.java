package dev.mosaic.jupyter;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code bin/mosaic jupyter install [--prefix DIR | --kernels-dir DIR] [--name mosaic-java]}:
 * writes {@code kernel.json} whose argv runs this JVM's java with the flags in
 * {@code conf/jvm.options}, the jshell opens and the kernel's class path.
 */
public final class KernelInstaller {
  public static final String DEFAULT_NAME = "mosaic-java";
  /** JJava's local execution reaches into jdk.jshell internals. */
  static final List<String> KERNEL_FLAGS = List.of(
      "--add-opens=jdk.jshell/jdk.jshell=ALL-UNNAMED", "-Djava.awt.headless=true");

  private KernelInstaller() {}

  public static void main(String[] args) throws IOException {
    Path home = Path.of(System.getProperty("mosaic.home", ".")).toAbsolutePath().normalize();
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath = System.getProperty("mosaic.kernelClasspath");
    Path prefix = null;
    Path kernelsDir = null;
    String name = DEFAULT_NAME;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--prefix" -> prefix = Path.of(value(args, ++i, a));
        case "--kernels-dir" -> kernelsDir = Path.of(value(args, ++i, a));
        case "--name" -> name = value(args, ++i, a);
        case "--java" -> java = value(args, ++i, a);
        case "--classpath" -> classpath = value(args, ++i, a);
        case "-h", "--help" -> {
          System.out.println("usage: mosaic jupyter install [--prefix DIR | --kernels-dir DIR]"
              + " [--name " + DEFAULT_NAME + "]\n  Installs the Mosaic Java kernel for Jupyter:"
              + " DIR/share/jupyter/kernels/NAME with --prefix, else the user's kernels directory.");
          return;
        }
        default -> fail("unknown argument '" + a + "' for 'jupyter install'");
      }
    }
    if (classpath == null || classpath.isBlank()) {
      fail("the kernel's class path is unknown (-Dmosaic.kernelClasspath or --classpath)");
    }
    Path dir = (kernelsDir != null ? kernelsDir
        : prefix != null ? prefix.resolve("share/jupyter/kernels") : userKernelsDir()).resolve(name);
    Path file = install(dir, java, home, classpath, "Java (Mosaic)");
    System.out.println("Installed kernel '" + name + "' in " + file.getParent());
    System.out.println("  jupyter kernelspec list   # shows it; notebooks in " + home.resolve(
        "notebooks") + " use it");
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) {
      fail(flag + " needs a value");
    }
    return args[i];
  }

  private static void fail(String msg) {
    System.err.println("mosaic: " + msg);
    System.exit(2);
  }

  /** Jupyter's per-user data dir: $JUPYTER_DATA_DIR, else the platform default. */
  static Path userKernelsDir() {
    String data = System.getenv("JUPYTER_DATA_DIR");
    if (data != null && !data.isBlank()) {
      return Path.of(data, "kernels");
    }
    Path userHome = Path.of(System.getProperty("user.home"));
    String os = System.getProperty("os.name").toLowerCase();
    if (os.contains("mac")) {
      return userHome.resolve("Library/Jupyter/kernels");
    }
    if (os.contains("win")) {
      return Path.of(System.getenv().getOrDefault("APPDATA", userHome.toString()), "jupyter",
          "kernels");
    }
    String xdg = System.getenv("XDG_DATA_HOME");
    return (xdg != null && !xdg.isBlank() ? Path.of(xdg) : userHome.resolve(".local/share"))
        .resolve("jupyter/kernels");
  }

  /** Writes {@code dir/kernel.json}; returns its path. */
  public static Path install(Path dir, String java, Path mosaicHome, String classpath,
      String displayName) throws IOException {
    List<String> argv = new ArrayList<>();
    argv.add(java);
    argv.addAll(jvmOptions(mosaicHome.resolve("conf/jvm.options")));
    argv.addAll(KERNEL_FLAGS);
    Path log = mosaicHome.resolve("conf/log4j2.properties");
    if (Files.isRegularFile(log)) {
      argv.add("-Dlog4j2.configurationFile=" + log);
    }
    argv.add("-Dmosaic.home=" + mosaicHome);
    argv.add("-cp");
    argv.add(absolute(classpath));
    argv.add(MosaicKernel.class.getName());
    argv.add("{connection_file}");
    StringBuilder json = new StringBuilder("{\n  \"argv\": [");
    for (int i = 0; i < argv.size(); i++) {
      json.append(i == 0 ? "\n    " : ",\n    ").append(quote(argv.get(i)));
    }
    json.append("\n  ],\n  \"display_name\": ").append(quote(displayName))
        .append(",\n  \"language\": \"java\",\n  \"interrupt_mode\": \"message\"\n}\n");
    Files.createDirectories(dir);
    Path file = dir.resolve("kernel.json");
    Files.writeString(file, json);
    return file;
  }

  /** The class path with every entry made absolute (Jupyter starts kernels in other dirs). */
  static String absolute(String classpath) {
    List<String> out = new ArrayList<>();
    for (String e : classpath.split(File.pathSeparator)) {
      if (!e.isBlank()) {
        out.add(Path.of(e).toAbsolutePath().normalize().toString());
      }
    }
    return String.join(File.pathSeparator, out);
  }

  /** The flags in a jvm.options file: one a line, # comments and blank lines ignored. */
  static List<String> jvmOptions(Path file) throws IOException {
    List<String> out = new ArrayList<>();
    if (!Files.isRegularFile(file)) {
      return out;
    }
    for (String line : Files.readAllLines(file)) {
      String t = line.strip();
      if (!t.isEmpty() && !t.startsWith("#")) {
        out.add(t);
      }
    }
    return out;
  }

  /** Joins class path entries read from a file (as Maven writes them) with a jar. */
  public static String classpath(String jar, Path classpathFile) throws IOException {
    String deps = Files.readString(classpathFile).strip();
    return deps.isEmpty() ? jar : jar + File.pathSeparator + deps;
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
